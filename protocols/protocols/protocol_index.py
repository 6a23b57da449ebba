"""Helical symmetry candidates from an averaged power spectrum (``spectools index`` in Scipion)."""
import dataclasses
import os

import pyworkflow.protocol.params as params

from spectools.pipelines.index import OPTIONS, IndexOptions, run_index, sidecar_path

from ..constants import INDEX_PNG, INDEX_SIDECAR, INDEX_TABLE
from ..convert import image_file
from .protocol_base import SpectoolsProtocol, add_option_param

#: Options on the Helix tab and the Search tab, in order.
HELIX_OPTIONS = ("diameter_a", "rise_a", "csym")
SEARCH_OPTIONS = ("max_csym", "rise_range_a", "twist_range_deg", "band_a", "threshold", "top")
#: Form help where the vocabulary's text speaks of the command line's inputs.
CLASS_HELP = ("For per-class spectra (the 'averaged power spectrum' run's class spectra): the "
              "class whose spectrum is indexed, by its class id. Ignored for a single "
              "spectrum.")


class SpectoolsProtIndexHelical(SpectoolsProtocol):
    """Index helical symmetry: rank (rise, twist, Cn) candidates for an averaged spectrum.

    The same pipeline as the command `spectools index`: the layer lines of the
    spectrum (their axial frequency and the radius of their first maximum,
    which bounds the lowest Bessel order through R = j'(n,1)/(pi D) for the
    helix diameter D) are explained by every helical lattice in the search
    ranges; lattices are scored on lines explained with a compatible order,
    predicted lines missing and observed lines unexplained. Descriptions a
    power spectrum cannot tell apart (the hand, twist t and t - 360/N, lattices
    predicting the same lines) are one candidate listing its equivalents.

    Output: the ranked table in the summary and in the run's extra folder
    (index.csv, and index.json with the observed lines and every parameter),
    and index.png (shown by the viewer): the spectrum with the predicted layer
    lines of the three best candidates side by side.
    """
    _label = "index helical symmetry"
    _possibleOutputs = {}
    _inputName = "inputSpectrum"
    _vocabulary = OPTIONS
    _references = ["Cochran1952", "Klug1958", "DeRosier1970"]

    # --------------------------- DEFINE param functions ----------------------
    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputSpectrum", params.PointerParam, pointerClass="Image, SetOfImages",
                      important=True, label="Averaged spectrum",
                      help="The spectrum of a spectools 'averaged power spectrum' run (its "
                           "combined spectrum, or its class spectra with the class chosen "
                           "below). Its JSON record gives the pixel size, padding and axis; "
                           "another centred spectrum is read with the image's sampling rate "
                           "and a vertical helical axis.")
        add_option_param(form, OPTIONS["spectrum_class"], label="Class id", help=CLASS_HELP)
        form.addSection(label="Helix")
        for name in HELIX_OPTIONS:
            add_option_param(form, OPTIONS[name])
        form.addSection(label="Search")
        for name in SEARCH_OPTIONS:
            add_option_param(form, OPTIONS[name])

    # --------------------------- INSERT steps functions ----------------------
    def _insertAllSteps(self):
        self._insertFunctionStep(self.indexStep, self._parameters())

    def _parameters(self):
        source, fixed = self._source()
        options = self.form_options(IndexOptions, OPTIONS, **fixed)
        return {"source": source, "options": dataclasses.asdict(options)}

    def _source(self):
        """The spectrum file and the options the input fixes (class, pixel size)."""
        obj = self.inputSpectrum.get()
        fixed = {"spectrum_class": None}
        if hasattr(obj, "iterItems"):          # a SetOfImages: the chosen class
            wanted = self.spectrumClass.get()
            item = obj[wanted] if wanted is not None else None
            if item is None:
                return None, fixed
            fixed["spectrum_class"] = int(wanted)
            filename = item.getFileName()
        else:
            filename = obj.getFileName()
        path = image_file(filename)
        if not os.path.exists(sidecar_path(path)):
            fixed["pixel_size_a"] = float(obj.getSamplingRate())
        return path, fixed

    # --------------------------- STEPS functions -----------------------------
    def indexStep(self, parameters):
        """Index the spectrum; writes extra/index.csv, .json and .png."""
        source, fixed = self._source()
        options = self.form_options(IndexOptions, OPTIONS, **fixed)
        done = self.run_job(run_index, source, self._getExtraPath(INDEX_TABLE), options,
                            front_end="scipion", context=self.context())
        self.log_lines(done.report_lines())

    # --------------------------- INFO functions ------------------------------
    def _validate(self):
        obj = self.inputSpectrum.get()
        if obj is None:
            return ["No input selected."]
        errors = self.option_errors(OPTIONS)
        if not self.diameter.get() or self.diameter.get() <= 0:
            errors.append("Give the helix diameter (Å): it places the Bessel maxima.")
        if hasattr(obj, "iterItems"):
            wanted = self.spectrumClass.get()
            ids = [item.getObjId() for item in obj.iterItems()]
            if wanted is None or wanted not in ids:
                errors.append(f"Choose the class to index: the input has the class spectra "
                              f"{', '.join(map(str, ids))}.")
        return errors

    def _summary(self):
        info = self.read_sidecar(INDEX_SIDECAR)
        if info is None:
            return [f"Input: {self.input_name()}."]
        lines = [f"{len(info['observed_lines'])} layer lines observed; helix diameter "
                 f"{info['diameter_a']:g} Å. Candidates (either hand):",
                 "rank | twist (deg) | rise (Å) | Cn | pitch (Å) | units/turn | score | "
                 "lines explained/predicted/observed"]
        for c in info["candidates"]:
            pitch = f"{c['pitch_a']:.1f}" if c["pitch_a"] else "inf"
            units = f"{c['units_per_turn']:.3f}" if c["units_per_turn"] else "inf"
            lines.append(f"{c['rank']} | {c['twist_deg']:.2f} | {c['rise_a']:.3f} | "
                         f"C{c['csym']} | {pitch} | {units} | {c['score']:.3f} | "
                         f"{c['explained']}/{c['predicted']}/{c['observed']}")
        lines += [f"Note: {note}" for note in info.get("notes", [])]
        lines.append(f"Table, picture and record: {self._getExtraPath(INDEX_TABLE)}, "
                     f"{self._getExtraPath(INDEX_PNG)}, {self._getExtraPath(INDEX_SIDECAR)}")
        return lines

    def _methods(self):
        info = self.read_sidecar(INDEX_SIDECAR)
        if not info or not info["candidates"]:
            return []
        top = info["candidates"][0]
        return [f"Helical symmetry candidates were ranked with {info['program']} from the "
                f"{len(info['observed_lines'])} layer lines of the averaged power spectrum "
                f"(helix diameter {info['diameter_a']:g} Å, layer lines Z = n/P + m/rise with "
                f"the first Bessel maximum at R = j'(n,1)/(πD)); the best candidate has a "
                f"rise of {top['rise_a']:.2f} Å, a twist of ±{top['twist_deg']:.2f}° and C"
                f"{top['csym']} symmetry. [spectools]"]
