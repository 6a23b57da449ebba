"""Thon-ring spectra of micrographs and movies (``spectools thon`` in Scipion)."""
import dataclasses
import json
import os
from collections import Counter
from pathlib import Path

import pyworkflow.protocol.params as params
from pyworkflow.protocol.constants import STEPS_PARALLEL
from pwem.objects import CTFModel, Image, SetOfCTF, SetOfImages

from spectools import __version__
from spectools.ops.ctf import CTF
from spectools.pipelines.thon import OPTIONS, ThonOptions, run_thon
from spectools.pipelines.workers import available_cpus

from ..constants import GAIN_FLIP_LABELS, GAIN_ROT_LABELS
from ..convert import image_file
from .protocol_base import SpectoolsProtocol, add_option_param, plural

#: What a missing micrograph usually means.
MISSING_MICROGRAPHS_HINT = (" (A particle import from RELION lists the micrographs its particles "
                            "came from without their files: import the micrographs themselves.)")
#: Options of the Movies group and the Spectrum tab, in order.
MOVIE_OPTIONS = ("frames", "group", "hot_sigma")
SPECTRUM_OPTIONS = ("method", "tile", "overlap", "target_apix", "box", "min_res_a", "max_res_a")
#: Options of the CTF tab shown when the CTF is estimated, in order.
CTF_OPTIONS = ("phase_plate", "min_defocus_a", "max_defocus_a")


class SpectoolsProtThonRings(SpectoolsProtocol):
    """Thon-ring power spectra of micrographs or movies.

    The same code as the command `spectools thon`, one step per micrograph
    (a continued run skips the finished ones). Movies: the spectra of single
    frames are summed (drift does not blur the rings), optionally after
    summing groups of frames; the set's gain (and dark) reference is applied
    to every frame, turned with RELION's --gain_rot/--gain_flip meanings.
    Welch averaging over tapered tiles or CTFFIND's whole-image spectrum.

    The CTF of every micrograph without an input CTF is estimated (unless
    switched off), CTFFIND's way, between the lowest and highest resolution
    of the Spectrum tab: defocus U and V, astigmatism angle (and the phase
    shift for phase-plate data), a figure of merit and the resolution to
    which the fit holds; voltage, spherical aberration and amplitude
    contrast come from the input's acquisition.

    Output: the spectra as a SetOfImages (item id = micrograph id, sampling
    rate = the spectrum's pixel size), the estimated CTFs as a SetOfCTF, and
    per micrograph in the run's extra folder NAME_ps.mrc, NAME_ps.png (with
    the CTF model and its zeros), NAME_profile.csv and NAME.json.
    """
    _label = "Thon rings"
    #: One step per micrograph, run side by side by Scipion's parallel executor.
    stepsExecutionMode = STEPS_PARALLEL
    _possibleOutputs = {"outputSpectra": SetOfImages, "outputCTF": SetOfCTF}
    _inputName = "inputMicrographs"
    _vocabulary = OPTIONS
    #: Thon rings; Welch's averaged periodograms; CTFFIND's whole-image spectrum.
    _references = ["Thon1966", "Welch1967", "Rohou2015"]

    # --------------------------- DEFINE param functions ----------------------
    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputMicrographs", params.PointerParam,
                      pointerClass="SetOfMicrographs, SetOfMovies", important=True,
                      label="Micrographs or movies",
                      help="The micrographs or movies whose power spectra to compute.")
        form.addParam("inputCTFs", params.PointerParam, pointerClass="SetOfCTF",
                      allowsNull=True, label="CTFs (optional)",
                      help="Draw each micrograph's CTF^2 model and zeros on its PNG (matched "
                           "by micrograph name, else by id).")
        # Shown only for movies (a form tab cannot be hidden, a group can).
        movies = form.addGroup("Movies", condition="inputMicrographs is not None and "
                                                   "_inputIsMovies")
        movies.addParam("useGain", params.BooleanParam, default=True,
                        label="Apply gain and dark?",
                        help="Use the gain (and dark) reference the set of movies carries.")
        add_option_param(movies, OPTIONS["gain_rot"], choices=GAIN_ROT_LABELS)
        add_option_param(movies, OPTIONS["gain_flip"], choices=GAIN_FLIP_LABELS)
        for name in MOVIE_OPTIONS:
            add_option_param(movies, OPTIONS[name])
        form.addSection(label="Spectrum")
        for name in SPECTRUM_OPTIONS:
            add_option_param(form, OPTIONS[name],
                             **({"condition": "method == 0"} if name in ("tile", "overlap")
                                else {}))
        form.addSection(label="CTF")
        # Yes: the micrographs without an input CTF (the job's default); No: none.
        add_option_param(form, OPTIONS["fit_ctf"], default=True)
        for name in CTF_OPTIONS:
            add_option_param(form, OPTIONS[name], condition="fitCtf")
        form.addParallelSection(threads=available_cpus(), mpi=0)

    # --------------------------- INSERT steps functions ----------------------
    def _insertAllSteps(self):
        ctfs = self._ctfs()
        steps = []
        for mic_id, path, outdir, name in self._jobs():
            ctf = ctfs.get(name) or ctfs.get(mic_id)
            steps.append(self._insertFunctionStep(self.spectrumStep, mic_id, path, outdir,
                                                  self._parameters(),
                                                  ctf.as_dict() if ctf else None,
                                                  prerequisites=[]))
        self._insertFunctionStep(self.createOutputStep, prerequisites=steps)

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
        """Micrograph name and id -> CTF, from the optional SetOfCTF."""
        out = {}
        ctfs = self.inputCTFs.get() if self.inputCTFs.hasValue() else None
        if ctfs is None:
            return out
        acq = self.inputMicrographs.get().getAcquisition()
        optics = {}
        if acq is not None and acq.getVoltage():
            optics = {"voltage_kv": acq.getVoltage(), "cs_mm": acq.getSphericalAberration(),
                      "amplitude_contrast": acq.getAmplitudeContrast()}
        for ctf in ctfs.iterItems():
            if not ctf.getDefocusU():
                continue
            values = CTF(defocus_u_a=ctf.getDefocusU(),
                         defocus_v_a=ctf.getDefocusV() or ctf.getDefocusU(),
                         defocus_angle_deg=ctf.getDefocusAngle() or 0.0,
                         phase_shift_deg=ctf.getPhaseShift() or 0.0, **optics)
            out[ctf.getObjId()] = values
            mic = ctf.getMicrograph() if hasattr(ctf, "getMicrograph") else None
            if mic is not None and hasattr(mic, "getMicName") and mic.getMicName():
                out[mic.getMicName()] = values
        return out

    def _parameters(self):
        """The options of every step (a changed one redoes the steps; threads do not)."""
        mics = self.inputMicrographs.get()
        gain = dark = None
        if self._is_movies() and self.useGain.get():
            gain = image_file(mics.getGain()) if mics.getGain() else None
            dark = image_file(mics.getDark()) if mics.getDark() else None
        options = self.form_options(ThonOptions, OPTIONS, pixel_size_a=mics.getSamplingRate(),
                                    gain=gain, dark=dark, fit_ctf=None if self.fitCtf.get()
                                    else False, **self._optics())
        if not self._is_movies():
            options = ThonOptions(**{**_as_dict(options), "frames": None, "group": 1})
        return {k: v for k, v in _as_dict(options).items() if k != "workers"}

    def _optics(self):
        """Voltage, Cs and amplitude contrast of the input's acquisition (those it has)."""
        acq = self.inputMicrographs.get().getAcquisition()
        if acq is None:
            return {}
        values = {"voltage_kv": acq.getVoltage(), "cs_mm": acq.getSphericalAberration(),
                  "amplitude_contrast": acq.getAmplitudeContrast()}
        return {k: float(v) for k, v in values.items() if v is not None}

    def _is_movies(self):
        return type(self.inputMicrographs.get()).__name__ == "SetOfMovies"

    def _inputIsMovies(self):
        """Form condition: the input is a SetOfMovies."""
        return self._is_movies()

    # --------------------------- STEPS functions -----------------------------
    def spectrumStep(self, mic_id, path, outdir, parameters, ctf):
        """One micrograph or movie through the spectools Thon-ring job."""
        os.makedirs(outdir, exist_ok=True)
        options = ThonOptions(**parameters,
                              workers=self.step_threads(self.inputMicrographs.get().getSize()))
        ctfs = {str(path): CTF(**ctf)} if ctf else None
        done = self.run_job(run_thon, [path], outdir, options, ctfs=ctfs, front_end="scipion",
                            context=self.context(), show_progress=False)
        self.log_lines(done.report_lines())

    def createOutputStep(self):
        spectra = self._createSetOfImages()
        ctfs = None
        first = True
        mics = {m.getObjId(): m.clone() for m in self.inputMicrographs.get().iterItems()}
        for mic_id, path, outdir, _ in self._jobs():
            stem = Path(path).stem
            info = _read_json(os.path.join(outdir, f"{stem}.json"))
            spectrum = os.path.join(outdir, f"{stem}_ps.mrc")
            img = Image(location=spectrum)
            img.setSamplingRate(float(info["spectrum_pixel_size_a"]))
            img.setObjId(mic_id)
            if first:
                spectra.setSamplingRate(float(info["spectrum_pixel_size_a"]))
                first = False
            spectra.append(img)
            if info.get("ctf_fit"):
                if ctfs is None:
                    ctfs = self._createSetOfCTF()
                    ctfs.setMicrographs(self.inputMicrographs)
                ctfs.append(ctf_model(info["ctf_fit"], mics[mic_id], spectrum))
        self._defineOutputs(outputSpectra=spectra)
        self._defineSourceRelation(self.inputMicrographs, spectra)
        if ctfs is not None:
            self._defineOutputs(outputCTF=ctfs)
            self._defineCtfRelation(self.inputMicrographs, ctfs)

    # --------------------------- INFO functions ------------------------------
    def _validate(self):
        mics = self.inputMicrographs.get()
        if mics is None:
            return ["No input selected."]
        errors = self.option_errors(OPTIONS)
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
        if self.fitCtf.get() and not (0 < (self.minDefocus.get() or 0)
                                      < (self.maxDefocus.get() or 0)):
            errors.append(f"'{OPTIONS['min_defocus_a'].label}' must be above 0 and below "
                          f"'{OPTIONS['max_defocus_a'].label}'.")
        if self._is_movies() and self.useGain.get():
            for what, value in (("gain", mics.getGain()), ("dark", mics.getDark())):
                if value and not os.path.exists(image_file(value)):
                    errors.append(f"The movies' {what} reference {value} does not exist.")
        missing = self.missing_files_error(mics, self._item_word())
        if missing:
            errors.append(missing + MISSING_MICROGRAPHS_HINT)
        return errors

    def _summary(self):
        if not hasattr(self, "outputSpectra"):
            mics = self.inputMicrographs.get()
            if mics is None:
                return ["No input selected."]
            return [f"Input: {self.input_link()}, {plural(mics.getSize(), self._item_word())}."]
        jobs = self._jobs()
        lines = [f"{plural(len(jobs), 'Thon-ring spectrum', 'Thon-ring spectra')} "
                 f"({OPTIONS['method'].choices[self.method.get()]} method) of "
                 f"{plural(len(jobs), self._item_word())}, sampling "
                 f"{self.outputSpectra.getSamplingRate():g} Å/px; PNGs in "
                 f"{self._getExtraPath()}."]
        if self._is_movies() and self.useGain.get() and self.inputMicrographs.get().getGain():
            lines.append(f"Gain reference applied (rotation {GAIN_ROT_LABELS[self.gainRot.get()]}"
                         f", flip {GAIN_FLIP_LABELS[self.gainFlip.get()]}).")
        return lines

    def _methods(self):
        if not hasattr(self, "outputSpectra"):
            return []
        how = ("Welch averaging over tapered tiles [Welch1967]" if self.method.get() == 0
               else "the whole-image spectrum, as CTFFIND computes it [Rohou2015]")
        what = plural(self.outputSpectra.getSize(), self._item_word())
        if self._is_movies():
            what += " (per-frame spectra summed)"
        return [f"Power spectra of {what} were computed with [spectools] {__version__} "
                f"({how}) to show their Thon rings [Thon1966]."]

    def _item_word(self):
        return "movie" if self._is_movies() else "micrograph"



def ctf_model(fit, mic, psd_file):
    """A pwem CTFModel of a spectools fit (the sidecar's ``ctf_fit``) of a micrograph.

    Defocus in EMX form (``setStandardDefocus``: U >= V, angle in [0, 180),
    the same astigmatism as spectools' [-90, 90)); the phase shift only when
    it was fitted; the fit resolution as the resolution and the score as the
    fit quality, as pwem's CTF protocols fill them.
    """
    ctf = CTFModel()
    ctf.setMicrograph(mic)
    ctf.setStandardDefocus(fit["defocus_u_a"], fit["defocus_v_a"], fit["defocus_angle_deg"])
    if fit.get("phase_shift_deg") is not None:
        ctf.setPhaseShift(fit["phase_shift_deg"])
    ctf.setResolution(fit["fit_resolution_a"])
    ctf.setFitQuality(fit["score"])
    ctf.setPsdFile(psd_file)
    return ctf


def _as_dict(options):
    return dataclasses.asdict(options)


def _read_json(path):
    with open(path) as fh:
        return json.load(fh)
