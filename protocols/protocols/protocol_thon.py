"""Thon-ring spectra of micrographs and movies (``spectools thon`` in Scipion)."""
import os
from collections import Counter
from pathlib import Path

import pyworkflow.protocol.params as params
from pwem.objects import Image, SetOfImages
from pwem.protocols import EMProtocol

from spectools import __version__
from spectools.cli.main import main as spectools_main
from spectools.errors import SpectoolsError
from spectools.ops.thon_rings import METHODS

from ..convert import image_file
from .common import read_json, threads

GAIN_ROT = ("0: none", "1: 90 deg", "2: 180 deg", "3: 270 deg")
GAIN_FLIP = ("0: none", "1: upside down", "2: left to right")


class SpectoolsProtThonRings(EMProtocol):
    """Thon-ring power spectra of micrographs or movies.

    The same code as the command `spectools thon`, one step per micrograph
    (a continued run skips the finished ones). Movies: the spectra of single
    frames are summed (drift does not blur the rings), optionally after
    summing groups of frames; the set's gain (and dark) reference is applied
    to every frame, turned with RELION's --gain_rot/--gain_flip meanings.
    Welch averaging over tapered tiles or CTFFIND's whole-image spectrum.

    Output: the spectra as a SetOfImages (item id = micrograph id, sampling
    rate = the spectrum's pixel size), and per micrograph in the run's extra
    folder NAME_ps.mrc, NAME_ps.png (with the CTF model and its zeros when a
    CTF is given), NAME_profile.csv and NAME.json.
    """
    _label = "Thon rings"
    _possibleOutputs = {"outputSpectra": SetOfImages}

    # --------------------------- DEFINE param functions ----------------------
    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputMicrographs", params.PointerParam,
                      pointerClass="SetOfMicrographs, SetOfMovies", important=True,
                      label="Micrographs or movies")
        form.addParam("inputCTFs", params.PointerParam, pointerClass="SetOfCTF",
                      allowsNull=True, label="CTFs (optional)",
                      help="Draw each micrograph's CTF^2 model and zeros on its PNG (matched "
                           "by micrograph name, else by id).")
        form.addSection(label="Movies")
        form.addParam("useGain", params.BooleanParam, default=True, label="Apply gain and dark",
                      help="Use the gain (and dark) reference the set of movies carries.")
        form.addParam("gainRot", params.EnumParam, choices=list(GAIN_ROT), default=0,
                      label="Rotate gain", help="RELION's --gain_rot: turns of 90 degrees "
                                                "clockwise as relion_display shows it.")
        form.addParam("gainFlip", params.EnumParam, choices=list(GAIN_FLIP), default=0,
                      label="Flip gain", help="RELION's --gain_flip.")
        form.addParam("frames", params.StringParam, default="", label="Frames (A:B)",
                      help="0-based, B excluded, e.g. '1:' drops the first frame. Empty: all.")
        form.addParam("group", params.IntParam, default=1, validators=[params.GE(1)],
                      label="Frames summed per spectrum",
                      help="Sum K frames coherently before each spectrum (low dose per frame).")
        form.addParam("hotSigma", params.FloatParam, default=0.0, label="Hot pixels (sigma)",
                      help="Replace pixels further than this many robust sigmas from the "
                           "median of the frame sum. 0: off.")
        form.addSection(label="Spectrum")
        form.addParam("method", params.EnumParam, choices=list(METHODS), default=0,
                      display=params.EnumParam.DISPLAY_HLIST, label="Method",
                      help="welch: tapered, plane-corrected tiles; whole: CTFFIND's "
                           "whole-image spectrum.")
        form.addParam("tile", params.IntParam, default=512, condition="method == 0",
                      label="Tile (px)")
        form.addParam("overlap", params.FloatParam, default=0.5, condition="method == 0",
                      label="Tile overlap")
        form.addParam("targetApix", params.FloatParam, default=0.0,
                      label="Target pixel size (A)",
                      help="Crop or pad the spectrum to this pixel size's Nyquist (e.g. 1.4). "
                           "0: the micrographs' own.")
        form.addParam("box", params.IntParam, default=512, label="Output box (px)")
        form.addParam("minRes", params.FloatParam, default=30.0,
                      label="Lowest resolution shown (A)")
        form.addParam("maxRes", params.FloatParam, default=0.0,
                      label="Highest resolution shown (A)", help="0: Nyquist.")
        form.addParallelSection(threads=2, mpi=0)

    # --------------------------- INSERT steps functions ----------------------
    def _insertAllSteps(self):
        ctfs = self._ctfs()
        for mic_id, path, outdir, name in self._jobs():
            self._insertFunctionStep(self.spectrumStep, mic_id, path, outdir,
                                     self._arguments(ctfs.get(name) or ctfs.get(mic_id)))
        self._insertFunctionStep(self.createOutputStep)

    def _jobs(self):
        """(id, file, output folder, name) per micrograph; own folders if names clash."""
        mics = [(m.getObjId(), image_file(m.getFileName()), self._mic_name(m))
                for m in self.inputMicrographs.get().iterItems(orderBy="id")]
        stems = Counter(Path(path).stem for _, path, _ in mics)
        clash = any(n > 1 for n in stems.values())
        return [(i, path, self._getExtraPath(f"mic{i:06d}") if clash else self._getExtraPath(),
                 name) for i, path, name in mics]

    @staticmethod
    def _mic_name(mic):
        name = mic.getMicName() if hasattr(mic, "getMicName") else None
        return name or os.path.basename(mic.getFileName())

    def _ctfs(self):
        out = {}
        ctfs = self.inputCTFs.get() if self.inputCTFs.hasValue() else None
        if ctfs is None:
            return out
        for ctf in ctfs.iterItems():
            values = {"defocus": ctf.getDefocusU(), "defocus_v": ctf.getDefocusV(),
                      "defocus_angle": ctf.getDefocusAngle()}
            out[ctf.getObjId()] = values
            mic = ctf.getMicrograph() if hasattr(ctf, "getMicrograph") else None
            if mic is not None and hasattr(mic, "getMicName") and mic.getMicName():
                out[mic.getMicName()] = values
        return out

    def _arguments(self, ctf=None):
        mics = self.inputMicrographs.get()
        args = ["--pixel-size", f"{mics.getSamplingRate():.6g}",
                "--method", METHODS[self.method.get()], "--box", str(self.box.get()),
                "--min-res", f"{self.minRes.get():g}"]
        if self.method.get() == 0:
            args += ["--tile", str(self.tile.get()), "--overlap", f"{self.overlap.get():g}"]
        if self.targetApix.get():
            args += ["--target-apix", f"{self.targetApix.get():g}"]
        if self.maxRes.get():
            args += ["--max-res", f"{self.maxRes.get():g}"]
        if self._is_movies():
            if self.frames.get():
                args += ["--frames", self.frames.get()]
            if self.group.get() > 1:
                args += ["--group", str(self.group.get())]
            if self.useGain.get():
                for option, value in (("--gain", mics.getGain()), ("--dark", mics.getDark())):
                    if value:
                        args += [option, image_file(value)]
                args += ["--gain-rot", str(self.gainRot.get()),
                         "--gain-flip", str(self.gainFlip.get())]
        if self.hotSigma.get():
            args += ["--hot-sigma", f"{self.hotSigma.get():g}"]
        if ctf and ctf.get("defocus"):
            acq = mics.getAcquisition()
            args += ["--defocus", f"{ctf['defocus']:.2f}",
                     "--defocus-v", f"{ctf['defocus_v'] or ctf['defocus']:.2f}",
                     "--defocus-angle", f"{ctf['defocus_angle'] or 0.0:.3f}"]
            if acq is not None and acq.getVoltage():
                args += ["--voltage", f"{acq.getVoltage():g}",
                         "--cs", f"{acq.getSphericalAberration():g}",
                         "--amplitude-contrast", f"{acq.getAmplitudeContrast():g}"]
        return args

    def _is_movies(self):
        return type(self.inputMicrographs.get()).__name__ == "SetOfMovies"

    # --------------------------- STEPS functions -----------------------------
    def spectrumStep(self, mic_id, path, outdir, arguments):
        """One micrograph or movie through `spectools thon` (the CLI's own code)."""
        os.makedirs(outdir, exist_ok=True)
        # threads are not a step argument: changing them does not redo finished micrographs
        argv = ["thon", path, "-o", outdir] + list(arguments) + ["--threads", str(threads(self))]
        self.info("spectools " + " ".join(argv))
        status = spectools_main(argv)
        if status != 0:
            raise SpectoolsError(f"spectools thon failed on {path} (status {status}; see the "
                                 "run's log)")

    def createOutputStep(self):
        spectra = self._createSetOfImages()
        first = True
        for mic_id, path, outdir, _ in self._jobs():
            stem = Path(path).stem
            info = read_json(os.path.join(outdir, f"{stem}.json"))
            img = Image(location=os.path.join(outdir, f"{stem}_ps.mrc"))
            img.setSamplingRate(float(info["spectrum_pixel_size_a"]))
            img.setObjId(mic_id)
            if first:
                spectra.setSamplingRate(float(info["spectrum_pixel_size_a"]))
                first = False
            spectra.append(img)
        self._defineOutputs(outputSpectra=spectra)
        self._defineSourceRelation(self.inputMicrographs, spectra)

    # --------------------------- INFO functions ------------------------------
    def _validate(self):
        mics = self.inputMicrographs.get()
        if mics is None:
            return ["No input selected."]
        errors = []
        if not mics.getSize():
            errors.append("The input set is empty.")
        if not mics.getSamplingRate() or mics.getSamplingRate() <= 0:
            errors.append("The input has no sampling rate.")
        try:
            rates = {round(float(v), 6) for v in mics.getUniqueValues("_samplingRate") if v}
        except Exception:
            rates = set()
        if len(rates) > 1:
            errors.append(f"Mixed sampling rates in the input ({', '.join(map(str, sorted(rates)))}"
                          " A/px).")
        if not 0 <= self.overlap.get() < 1:
            errors.append("The tile overlap must be in [0, 1).")
        frames = (self.frames.get() or "").strip()
        if frames:
            start, sep, stop = frames.partition(":")
            try:
                [int(v) for v in (start, stop) if v.strip()]
            except ValueError:
                errors.append(f"Frames {frames!r} is not 'A:B'.")
        if self._is_movies() and self.useGain.get():
            for what, value in (("gain", mics.getGain()), ("dark", mics.getDark())):
                if value and not os.path.exists(image_file(value)):
                    errors.append(f"The movies' {what} reference {value} does not exist.")
        return errors

    def _summary(self):
        if not hasattr(self, "outputSpectra"):
            mics = self.inputMicrographs.get()
            return [f"Input: {mics.getSize() if mics else 0} "
                    f"{'movies' if self._is_movies() else 'micrographs'}."]
        jobs = self._jobs()
        lines = [f"{len(jobs)} Thon-ring spectra ({METHODS[self.method.get()]} method), "
                 f"sampling {self.outputSpectra.getSamplingRate():g} A/px; PNGs in "
                 f"{self._getExtraPath()}."]
        if self._is_movies() and self.useGain.get() and self.inputMicrographs.get().getGain():
            lines.append(f"Gain reference applied (rot {self.gainRot.get()}, "
                         f"flip {self.gainFlip.get()}).")
        return lines

    def _methods(self):
        if not hasattr(self, "outputSpectra"):
            return []
        return [f"Power spectra of {self.outputSpectra.getSize()} "
                f"{'movies (per-frame spectra summed)' if self._is_movies() else 'micrographs'}"
                f" were computed with spectools {__version__} [spectools] "
                f"({'Welch averaging over tapered tiles' if self.method.get() == 0 else 'the whole-image spectrum'})."]
