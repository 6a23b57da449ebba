"""Averaged power spectrum of aligned helical segments (``spectools avgps`` in Scipion)."""
import os

import numpy as np

import pyworkflow.protocol.params as params
from pwem.constants import ALIGN_2D, ALIGN_PROJ
from pwem.objects import Image, SetOfImages
from pwem.protocols import EMProtocol

from spectools import __version__
from spectools.errors import SpectoolsError
from spectools.io.stacks import open_stack
from spectools.pipelines.avgps import averaged_power_spectrum, write_outputs
from spectools.pipelines.inputs import checked_table
from spectools.pipelines.selfcheck import class_average_correlations, summarize_check
from spectools.ops.layer_lines import layer_lines
from spectools.ops.masks import MASKS
from spectools.ops.axis import axis_angle_from_image
from spectools.ops.resample import INTERPOLATIONS

from ..convert import (available_classes, image_file, image_index, input_alignment, is_classes,
                       parse_class_ids, sampling_rates, table_from_set)
from .common import (add_matrix_form_param, matrix_form, provenance_warning, read_json,
                     threads)

AXES = ("vertical", "horizontal")
CTFS = ("none", "wiener")
OUTPUT = "avgps.mrc"


class SpectoolsProtAveragedSpectrum(EMProtocol):
    """Averaged power spectrum of aligned helical segments, per class and combined.

    Each segment is brought into its class frame (psi and shifts) by one exact
    Fourier resampling, with the class's helical axis turned horizontal; masked
    with a soft tube along the axis (or a circle); scaled to zero mean and unit
    variance inside the mask; zero padded; and its |FFT|^2 added to its class.
    No angle binning. The same pipeline as the command `spectools avgps`.

    Output: the combined spectrum (an Image: full centred plane, zero frequency
    at index N//2, sampling rate = the segments' real-space pixel size, so one
    Fourier pixel is 1/(N * sampling) 1/A), the per-class spectra (a
    SetOfImages, item id = class id), and in the run's extra folder the PNGs
    (with the predicted layer lines when twist and rise are given), the
    layer-line profile and a JSON sidecar with every parameter.
    """
    _label = "averaged power spectrum"
    _possibleOutputs = {"outputSpectrum": Image, "outputClassSpectra": SetOfImages}

    # --------------------------- DEFINE param functions ----------------------
    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputSet", params.PointerParam,
                      pointerClass="SetOfClasses2D, SetOfParticles", important=True,
                      label="Classes or aligned segments",
                      help="A SetOfClasses2D (the particles of its enabled classes are used; "
                           "a subset of classes made in the GUI works as it is) or a "
                           "SetOfParticles with a 2D alignment.")
        form.addParam("classIds", params.StringParam, default="",
                      label="Classes",
                      help="Class ids to use, e.g. '1,3-5'. Empty: all enabled classes (of a "
                           "SetOfClasses2D) or all particles.")
        form.addParam("useClassAverages", params.BooleanParam, default=True,
                      label="Use class averages",
                      help="With a SetOfClasses2D that has class averages: measure each "
                           "class's helical axis on its average, and check the alignment "
                           "against the averages (spectools avgps --class-averages).")
        add_matrix_form_param(form)

        form.addSection(label="Spectrum")
        form.addParam("mask", params.EnumParam, choices=list(MASKS), default=0,
                      display=params.EnumParam.DISPLAY_HLIST, label="Mask",
                      help="Soft mask in the class frame: a tube along the helical axis, a "
                           "circle, or none.")
        form.addParam("tubeDiameter", params.FloatParam, default=0.0, condition="mask == 0",
                      label="Tube diameter (A)",
                      help="Width of the tube mask. 0: 60% of the box.")
        form.addParam("pad", params.IntParam, default=2, validators=[params.GE(1)],
                      label="Padding factor", help="Zero padding (1 = none).")
        form.addParam("normalize", params.BooleanParam, default=True, label="Normalize",
                      help="Per segment: zero mean and unit variance inside the mask; white "
                           "noise gives 1. No: spectra as |FFT/N^2|^2 (with pad 1 and no mask, "
                           "relion_image_handler --avg_ampl2_ali).")
        form.addParam("axis", params.EnumParam, choices=list(AXES), default=0,
                      display=params.EnumParam.DISPLAY_HLIST, label="Helical axis of the output",
                      help="vertical: layer lines horizontal (HILL, EMAN2, Bsoft); "
                           "horizontal: RELION's frame.")
        form.addParam("axisAngle", params.StringParam, default="auto",
                      label="Axis angle in the class frame",
                      help="'auto' measures it per class (on the class average when used, "
                           "else on the mean of the aligned segments), or an angle in degrees "
                           "from +x towards +y.")
        form.addParam("ctf", params.EnumParam, choices=list(CTFS), default=0,
                      display=params.EnumParam.DISPLAY_HLIST, label="CTF",
                      help="wiener divides by the mean CTF^2 of the segments (each turned "
                           "into the class frame) plus the Wiener constant.")
        form.addParam("wienerConstant", params.FloatParam, default=0.1, condition="ctf == 1",
                      label="Wiener constant")
        form.addParam("interpolation", params.EnumParam, choices=list(INTERPOLATIONS),
                      default=0, expertLevel=params.LEVEL_ADVANCED,
                      label="Interpolation", help="Kernel of the image rotation.")

        form.addSection(label="Outputs")
        form.addParam("perClass", params.BooleanParam, default=True,
                      label="Per-class spectra", help="Also one spectrum per class.")
        form.addParam("profile", params.BooleanParam, default=True,
                      label="Layer-line profile", help="CSV and PNG of the axial profile.")
        line = form.addLine("Overlay: predicted layer lines",
                            help="Twist (deg) and rise (A) of the helix; optional cyclic "
                                 "symmetry and diameter (A) for the Bessel maxima. Leave "
                                 "twist and rise at 0 for no overlay.")
        line.addParam("twist", params.FloatParam, default=0.0, label="twist")
        line.addParam("rise", params.FloatParam, default=0.0, label="rise")
        line.addParam("csym", params.IntParam, default=1, label="Cn")
        line.addParam("diameter", params.FloatParam, default=0.0, label="diameter")
        form.addParam("resolutionMarks", params.StringParam, default="",
                      label="Resolution marks (A)", help="Circles on the PNGs, e.g. '10,4.7'.")
        form.addParallelSection(threads=2, mpi=0)

    # --------------------------- INSERT steps functions ----------------------
    def _insertAllSteps(self):
        self._insertFunctionStep(self.spectrumStep, self._parameters())
        self._insertFunctionStep(self.createOutputStep)

    def _parameters(self):
        return {
            "classes": self.classIds.get() or "", "matrix_form": matrix_form(self),
            "class_averages": bool(self.useClassAverages.get()),
            "mask": MASKS[self.mask.get()], "tube_diameter_a": self.tubeDiameter.get() or 0.0,
            "pad": int(self.pad.get()), "normalize": bool(self.normalize.get()),
            "axis": AXES[self.axis.get()], "axis_angle": (self.axisAngle.get() or "auto").strip(),
            "ctf": CTFS[self.ctf.get()], "wiener_constant": float(self.wienerConstant.get()),
            "interpolation": INTERPOLATIONS[self.interpolation.get()],
            "per_class": bool(self.perClass.get()), "profile": bool(self.profile.get()),
            "overlay": self._overlay_spec(), "resolution_marks": self._marks(),
        }  # threads are read in the step: changing them does not invalidate a finished run

    # --------------------------- STEPS functions -----------------------------
    def spectrumStep(self, p):
        """Read the input, then the spectools pipeline; writes extra/avgps.*."""
        obj = self.inputSet.get()
        table = table_from_set(obj, class_ids=parse_class_ids(p["classes"]),
                               form=p["matrix_form"], source=self._input_name())
        table, box, notes = checked_table(table)
        for note in notes:
            self.info(note)
        psize = float(table.data["pixel_size_a"].to_numpy(float)[0])
        if not np.isfinite(psize) or psize <= 0:
            raise SpectoolsError("the input has no sampling rate")
        diameter_px = None
        if p["mask"] == "tube":
            diameter_px = (p["tube_diameter_a"] / psize if p["tube_diameter_a"] > 0
                           else 0.6 * box)
        axis_angle = p["axis_angle"] if p["axis_angle"] == "auto" else float(p["axis_angle"])
        extra, class_average_angles = {}, None
        averages = self._class_averages(obj, box) if p["class_averages"] else {}
        if averages and table.has("class_number"):
            used = set(int(k) for k in table.native_class(table.data["class_number"].unique()))
            averages = {k: v for k, v in averages.items() if k in used}
        if averages:
            scores = class_average_correlations(table, averages)
            best, verdict = summarize_check(scores)
            self.info(f"alignment check: {verdict}")
            extra["alignment_check"] = {"correlations": {str(k): v for k, v in scores.items()},
                                        "best": best, "verdict": verdict}
            if axis_angle == "auto":
                class_average_angles = {k: axis_angle_from_image(img)
                                        for k, img in averages.items()}
        result = averaged_power_spectrum(
            table, mask=p["mask"], tube_diameter_px=diameter_px, pad=p["pad"],
            normalize=p["normalize"], axis=p["axis"], axis_angle=axis_angle,
            class_average_angles=class_average_angles, interpolation=p["interpolation"],
            ctf=p["ctf"], wiener_constant=p["wiener_constant"], workers=threads(self),
            show_progress=False)
        overlay = None
        if p["overlay"]:
            o = p["overlay"]
            overlay = layer_lines(o["twist"], o["rise"], int(o.get("csym", 1)),
                                  o.get("diameter"), max_frequency=0.5 / psize)
        extra["scipion"] = {"protocol": self.getObjLabel() or self._label,
                            "input": self._input_name(), "matrix_form": p["matrix_form"]}
        files = write_outputs(result, self._getExtraPath(OUTPUT), table=table,
                              per_class=p["per_class"], png=True, profile=p["profile"],
                              overlay=overlay, resolution_marks=tuple(p["resolution_marks"]),
                              axis=p["axis"], parameters=p, extra=extra)
        for f in files:
            self.info(f"wrote {f}")
        for note in result.notes:
            self.info(f"note: {note}")

    def createOutputStep(self):
        info = read_json(self._getExtraPath("avgps.json"))
        psize = float(info["pixel_size_a"])
        combined = Image(location=self._getExtraPath(OUTPUT))
        combined.setSamplingRate(psize)
        outputs = {"outputSpectrum": combined}
        classes_file = self._getExtraPath("avgps_classes.mrcs")
        if os.path.exists(classes_file):
            spectra = self._createSetOfImages()
            spectra.setSamplingRate(psize)
            for i, k in enumerate(sorted(int(k) for k in info["segments_per_class"]), 1):
                img = Image(location=(i, classes_file))
                img.setSamplingRate(psize)
                img.setObjId(k)
                spectra.append(img)
            outputs["outputClassSpectra"] = spectra
        self._defineOutputs(**outputs)
        for out in outputs.values():
            self._defineSourceRelation(self.inputSet, out)

    # --------------------------- INFO functions ------------------------------
    def _validate(self):
        errors = []
        obj = self.inputSet.get()
        if obj is None:
            return ["No input selected."]
        if not obj.getSize():
            errors.append("The input set is empty.")
        if input_alignment(obj) not in (ALIGN_2D, ALIGN_PROJ):
            errors.append(f"The input ({self._input_name()}) has no 2D alignment: the segments "
                          "cannot be brought into their class frame. Use aligned particles "
                          "or 2D classes.")
        try:
            wanted = parse_class_ids(self.classIds.get())
        except SpectoolsError as exc:
            errors.append(str(exc))
            wanted = None
        available = available_classes(obj)
        if is_classes(obj) and not available:
            errors.append("No enabled class in the input.")
        if wanted is not None:
            if not available:
                errors.append("Classes were selected but the input particles have no class ids.")
            elif not set(wanted) & set(available):
                errors.append(f"The selection {self.classIds.get()!r} is empty: the input has "
                              f"classes {_ranges(available)}.")
        rates = sampling_rates(obj)
        if len(rates) > 1:
            errors.append(f"Mixed sampling rates in the input ({', '.join(map(str, rates))} "
                          "A/px): the segments' spectra cannot be averaged.")
        images = obj.getImages() if is_classes(obj) else obj
        if self.ctf.get() == 1 and images is not None and not images.hasCTF():
            errors.append("CTF 'wiener' needs CTF parameters; the input particles have none.")
        dim = obj.getDimensions() if not is_classes(obj) else _class_dim(obj)
        psize = rates[0] if rates else None
        if (self.mask.get() == 0 and self.tubeDiameter.get() and psize and dim and dim[0]
                and self.tubeDiameter.get() / psize > dim[0]):
            errors.append(f"The tube diameter ({self.tubeDiameter.get():g} A) is wider than "
                          f"the box ({dim[0]} px at {psize:g} A/px).")
        if (self.twist.get() or self.rise.get()) and not (self.rise.get() and
                                                          self.rise.get() > 0):
            errors.append("The overlay needs a positive rise (and a twist).")
        if self.csym.get() < 1:
            errors.append("The cyclic symmetry must be at least 1.")
        angle = (self.axisAngle.get() or "auto").strip()
        if angle != "auto":
            try:
                float(angle)
            except ValueError:
                errors.append(f"Axis angle {angle!r} is not 'auto' or a number.")
        try:
            self._marks()
        except ValueError:
            errors.append("Resolution marks must be positive numbers, e.g. '10,4.7'.")
        return errors

    def _warnings(self):
        warning = provenance_warning(self, self.inputSet)
        return [warning] if warning else []

    def _summary(self):
        info = read_json(self._getExtraPath("avgps.json"))
        if info is None:
            return [f"Input: {self._input_name()}; classes "
                    f"{self.classIds.get() or 'all enabled'}."]
        counts = info["segments_per_class"]
        lines = [f"{info['segments']} segments averaged, from {len(counts)} class(es) "
                 f"({', '.join(f'{k}: {v}' for k, v in counts.items())}).",
                 f"Spectrum {info['padded_px']} x {info['padded_px']} px, sampling "
                 f"{info['pixel_size_a']:g} A/px (real space; one Fourier pixel = "
                 f"{info['fourier_pixel_per_angstrom']:.5f} 1/A), helical axis {info['axis']}."]
        for k, a in info.get("axis_angles", {}).items():
            lines.append(f"Class {k}: axis at {a['angle_deg']:.2f} deg ({a['from']}).")
        if "alignment_check" in info:
            lines.append(f"Alignment check: {info['alignment_check']['verdict']}")
        for note in info.get("notes", []):
            lines.append(f"Note: {note}")
        lines.append(f"PNG and JSON: {self._getExtraPath('avgps.png')}, "
                     f"{self._getExtraPath('avgps.json')}")
        warning = provenance_warning(self, self.inputSet)
        if warning:
            lines.append(warning)
        return lines

    def _methods(self):
        info = read_json(self._getExtraPath("avgps.json"))
        if info is None:
            return []
        p = info.get("parameters", {})
        mask = {"tube": f"a soft tube mask ({p.get('tube_diameter_a') or '60% of the box'}"
                        f"{' A' if p.get('tube_diameter_a') else ''} wide)",
                "circle": "a soft circular mask", "none": "no mask"}[p.get("mask", "tube")]
        return [f"The averaged power spectrum of {info['segments']} helical segments "
                f"({len(info['segments_per_class'])} classes) was computed with spectools "
                f"{__version__} [spectools]: each segment was brought into its class frame by "
                f"an exact Fourier rotation and shift, with the helical axis measured "
                f"per class, multiplied by {mask}, "
                f"{'normalised to zero mean and unit variance inside the mask, ' if p.get('normalize') else ''}"
                f"zero padded {p.get('pad', 2)}-fold, and the squared Fourier amplitudes were "
                f"averaged without angle binning."]

    # --------------------------- UTILS functions -----------------------------
    def _input_name(self):
        obj = self.inputSet.get()
        return f"{type(obj).__name__} {obj.getObjLabel() or obj.getNameId()}" if obj else ""

    def _overlay_spec(self):
        if not (self.twist.get() and self.rise.get()):
            return None
        spec = {"twist": float(self.twist.get()), "rise": float(self.rise.get()),
                "csym": int(self.csym.get() or 1)}
        if self.diameter.get():
            spec["diameter"] = float(self.diameter.get())
        return spec

    def _marks(self):
        text = (self.resolutionMarks.get() or "").replace(" ", ",")
        values = [float(v) for v in text.split(",") if v.strip()]
        if any(v <= 0 for v in values):
            raise ValueError("resolution marks must be positive")
        return values

    def _class_averages(self, obj, box):
        """Class id -> class average (the classes' representatives), when they exist."""
        if not is_classes(obj) or not obj.hasRepresentatives():
            return {}
        out = {}
        for cls in obj.iterItems():
            rep = cls.getRepresentative()
            if not cls.isEnabled() or rep is None or rep.getFileName() is None:
                continue
            index, filename = rep.getLocation()
            path = image_file(filename)
            if not os.path.exists(path):
                continue
            stack = open_stack(path)
            if stack.shape[-1] != box or stack.shape[-2] != box:
                self.info(f"class averages are {stack.shape[-1]} px, the segments {box} px: "
                          "not used")
                return {}
            out[cls.getObjId()] = np.asarray(stack[image_index(index)], np.float32)
        return out


def _class_dim(classes):
    for cls in classes.iterItems():
        if cls.isEnabled() and cls.getSize():
            return cls.getDimensions()
    return None


def _ranges(values):
    return ", ".join(str(v) for v in values)
