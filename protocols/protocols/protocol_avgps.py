"""Averaged power spectrum of aligned helical segments (``spectools avgps`` in Scipion)."""
import dataclasses
import os
import pickle
import shutil

import numpy as np

import pyworkflow.protocol.params as params
from pwem.constants import ALIGN_2D, ALIGN_PROJ
from pwem.objects import Image, SetOfImages, SetOfParticles
from pyworkflow.protocol.constants import STEPS_PARALLEL

from spectools.formats import read_particles
from spectools.io.atomic import atomic_output
from spectools.io.stacks import open_stack
from spectools.pipelines.avgps import (OPTIONS, AvgpsOptions, finish_avgps, methods_text,
                                       plan_avgps)
from spectools.pipelines.inputs import SELECT_OPTIONS
from spectools.pipelines.spectrum_average import ClassSums, add_class_sums, spectrum_sums
from spectools.pipelines.workers import available_cpus

from ..constants import (AVGPS_CLASSES, AVGPS_GROUPS, AVGPS_OUTPUT, AVGPS_PARITY, AVGPS_PNG,
                         AVGPS_REFINED, AVGPS_SIDECAR)
from ..convert import (available_classes, has_psi_priors, image_file, image_index, image_sets,
                       input_alignment, is_classes, sampling_rates, table_from_set,
                       transform_from_alignment)
from .protocol_base import SpectoolsProtocol, add_matrix_form_param, add_option_param, plural

#: The class list's parser, as the command line's class selection parses it.
parse_class_list = SELECT_OPTIONS["classes"].parse

#: Options shown on the Spectrum tab, in order.
SPECTRUM_OPTIONS = ("angles", "mask", "tube_diameter_a", "pad", "normalize", "axis", "axis_angle",
                    "ctf_correction", "wiener_constant", "raster", "interpolation")


class SpectoolsProtAveragedSpectrum(SpectoolsProtocol):
    """Averaged power spectrum of aligned helical segments, per class and combined.

    Camera-raster lines (offsets per detector column or row) are measured and
    suppressed in the raw segments where found; each segment is then brought
    into its class frame (psi and shifts) by one windowed-sinc resampling, with
    the class's helical axis turned horizontal; masked with a soft tube along
    the axis (or a circle); scaled to zero mean and unit variance inside the
    mask; zero padded; and its |FFT|^2 added to its class. The same pipeline
    as the command `spectools avgps`.

    Output: the combined spectrum (an Image: full centred plane, zero frequency
    at index N//2, sampling rate = the segments' real-space pixel size, so one
    Fourier pixel is 1/(N * sampling) 1/A), the per-class spectra (a
    SetOfImages, item id = class id), and in the run's extra folder the PNGs
    (with the predicted layer lines when twist and rise are given), the
    layer-line profile and a JSON sidecar with every parameter.
    """
    _label = "averaged power spectrum"
    _possibleOutputs = {"outputSpectrum": Image, "outputClassSpectra": SetOfImages,
                        "outputGroupSpectra": SetOfImages, "outputParticles": SetOfParticles,
                        "outputParity": Image}
    _inputName = "inputSet"
    _vocabulary = OPTIONS
    #: Helical diffraction (the layer lines and their Bessel maxima); the exact rotation.
    _references = ["Cochran1952", "DeRosier1970", "Unser1995"]
    #: The spectra of groups of stack files are separate steps (see _insertAllSteps).
    stepsExecutionMode = STEPS_PARALLEL

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
                      help="Scipion class ids to use, e.g. '1,3-5'. Empty: all enabled classes "
                           "(of a SetOfClasses2D) or all particles.")
        form.addParam("useClassAverages", params.BooleanParam, default=True,
                      condition="inputSet is not None and _inputIsClasses",
                      label="Use class averages?",
                      help="Measure each class's helical axis on its class average, and check "
                           "the alignment convention against the averages (for classes that "
                           "have averages).")
        add_matrix_form_param(form)

        form.addSection(label="Spectrum")
        for name in SPECTRUM_OPTIONS:
            condition = {"tube_diameter_a": "mask == 0", "wiener_constant": "ctfCorrection == 1"}
            add_option_param(form, OPTIONS[name],
                             **({"condition": condition[name]} if name in condition else {}))

        form.addSection(label="Refinement")
        for name in ("refine_psi_deg", "refine_shift_px", "min_correlation"):
            add_option_param(form, OPTIONS[name])

        form.addSection(label="Outputs")
        add_option_param(form, OPTIONS["per_class"], default=True)
        add_option_param(form, OPTIONS["group_by"])
        add_option_param(form, OPTIONS["min_group"])
        add_option_param(form, OPTIONS["phase_parity"])
        add_option_param(form, OPTIONS["profile"], default=True)
        line = form.addLine("Overlay: predicted layer lines",
                            help=OVERLAY_HELP)
        line.addParam("twist", params.FloatParam, default=0.0, label="Twist (deg)",
                      help="Twist of the helix per subunit, degrees (0: no overlay).")
        line.addParam("rise", params.FloatParam, default=0.0, label="Rise (Å)",
                      help="Rise of the helix per subunit, Å (0: no overlay).")
        line.addParam("csym", params.IntParam, default=1, label="Cyclic symmetry (Cn)",
                      help="n of the Cn symmetry around the helical axis (1: none).")
        line.addParam("diameter", params.FloatParam, default=0.0, label="Diameter (Å)",
                      help="Outer diameter of the helix, Å: places the first Bessel maximum "
                           "of each layer line. 0: the layer lines are marked at the edges "
                           "of the picture only.")
        add_option_param(form, OPTIONS["resolution_marks"])
        form.addParallelSection(threads=available_cpus(), mpi=0)

    def _inputIsClasses(self):
        """Form condition: the input is a SetOfClasses2D."""
        obj = self.inputSet.get()
        return obj is not None and is_classes(obj)

    # --------------------------- INSERT steps functions ----------------------
    def _insertAllSteps(self):
        """Plan; the spectra of groups of stack files (one step each); their sum; the outputs.

        With N threads Scipion runs up to N - 1 steps at a time (through a
        queue with "Use a queue engine?", on the node it was given); the
        groups are as many (one with fewer than 3 threads).  Every step gets
        the parameters, so that a changed one redoes them all in Continue mode.
        """
        parameters = self._parameters()
        parts = self.parallel_steps()  # one step per group of stacks that can run at once
        plan = self._insertFunctionStep(self.planStep, parameters, parts, prerequisites=[])
        sums = [self._insertFunctionStep(self.partStep, parameters, part, parts,
                                         prerequisites=[plan]) for part in range(parts)]
        total = self._insertFunctionStep(self.spectrumStep, parameters, parts,
                                         prerequisites=sums)
        self._insertFunctionStep(self.createOutputStep, prerequisites=[total])

    def _parameters(self):
        options = self._options()
        return {"classes": self.classIds.get() or "", "matrix_form": self.matrix_form(),
                "class_averages": bool(self.useClassAverages.get()),
                "options": {k: v for k, v in dataclasses.asdict(options).items()
                            if k != "workers"}}

    def _options(self, **fixed):
        return self.form_options(AvgpsOptions, OPTIONS, png=True, overlay=self._overlay(),
                                 **fixed)

    # --------------------------- STEPS functions -----------------------------
    def planStep(self, parameters, parts):
        """Read the input; check it, measure axis angles and camera raster (the job's plan)."""
        obj = self.inputSet.get()
        classes = parameters["classes"]
        angles = parameters["options"].get("angles", "alignment")
        table = table_from_set(obj, class_ids=parse_class_list(classes) if classes else None,
                               form=parameters["matrix_form"], source=self.input_name(),
                               need_alignment=angles == "alignment")
        averages = self._class_averages(obj) if parameters["class_averages"] else None
        plan = self.run_job(plan_avgps, table, self._getExtraPath(AVGPS_OUTPUT),
                            self._options(workers=self.threads()), class_averages=averages,
                            show_progress=False)
        self._dump(plan, PLAN_FILE)
        self.info(f"{len(plan.spectrum.table)} segments in {parts} "
                  f"{'group' if parts == 1 else 'groups'} of stack files")

    def partStep(self, parameters, part, parts):
        """The spectra of one group of stack files, summed per class."""
        plan = self._load(PLAN_FILE)
        rows = _group_rows(plan.spectrum, part, parts)
        sums = self.run_job(spectrum_sums, plan.spectrum, rows,
                            workers=self.step_threads(parts))
        self._dump(sums, PART_FILE % part)
        self.info(f"group {part + 1} of {parts}: {len(rows)} segments")

    def spectrumStep(self, parameters, parts):
        """The groups' sums added; the spectra and every output written to extra/avgps.*."""
        plan = self._load(PLAN_FILE)
        total = ClassSums()
        for part in range(parts):
            add_class_sums(total, self._load(PART_FILE % part))
        done = self.run_job(finish_avgps, plan, total, front_end="scipion",
                            context=self.context())
        self.log_lines(done.report_lines())
        shutil.rmtree(self._getExtraPath(STEPS_FOLDER), ignore_errors=True)

    def _dump(self, value, name):
        """Pickle what one step hands to the next, atomically.

        In the run's folder, not its tmp folder: with a queue that submits
        every step as a job, steps may run on nodes whose scratch differs.
        """
        with atomic_output(self._getExtraPath(STEPS_FOLDER, name)) as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)

    def _load(self, name):
        with open(self._getExtraPath(STEPS_FOLDER, name), "rb") as fh:
            return pickle.load(fh)

    def createOutputStep(self):
        info = self.read_sidecar(AVGPS_SIDECAR)
        psize = float(info["pixel_size_a"])
        combined = Image(location=self._getExtraPath(AVGPS_OUTPUT))
        combined.setSamplingRate(psize)
        outputs = {"outputSpectrum": combined}
        classes_file = self._getExtraPath(AVGPS_CLASSES)
        if os.path.exists(classes_file):
            spectra = self._createSetOfImages()
            spectra.setSamplingRate(psize)
            for i, k in enumerate(sorted(int(k) for k in info["segments_per_class"]), 1):
                img = Image(location=(i, classes_file))
                img.setSamplingRate(psize)
                img.setObjId(k)
                spectra.append(img)
            outputs["outputClassSpectra"] = spectra
        parity_file = self._getExtraPath(AVGPS_PARITY)
        if os.path.exists(parity_file):
            parity = Image(location=parity_file)
            parity.setSamplingRate(psize)
            outputs["outputParity"] = parity
        refined_file = self._getExtraPath(AVGPS_REFINED)
        if os.path.exists(refined_file):
            outputs["outputParticles"] = self._refined_particles(refined_file)
        groups_file = self._getExtraPath(AVGPS_GROUPS)
        if os.path.exists(groups_file):
            outputs["outputGroupSpectra"] = self._group_spectra(groups_file, info, psize)
        self._defineOutputs(**outputs)
        for out in outputs.values():
            self._defineSourceRelation(self.inputSet, out)

    def _refined_particles(self, path):
        """The input particles with their refined 2D alignment (the rows of the refined
        metadata are in the order the input was read in)."""
        obj = self.inputSet.get()
        classes = self.classIds.get()
        read = table_from_set(obj, class_ids=parse_class_list(classes) if classes else None,
                              form=self.matrix_form(), source=self.input_name())
        refined = read_particles(path).data
        psi, ox, oy = (refined[c].to_numpy(float) for c in ("psi_deg", "origin_x_px",
                                                             "origin_y_px"))
        rows = {int(i): r for r, i in enumerate(read.data["scipion_id"].to_numpy())}
        parts = self._createSetOfParticles(suffix="Refined")
        images = obj.getImages() if is_classes(obj) else obj
        parts.copyInfo(images)
        parts.setAlignment2D()
        for items in image_sets(obj):
            for particle in items.iterItems(orderBy="id"):
                r = rows.get(particle.getObjId())
                if r is None:
                    continue
                new = particle.clone()
                new.setTransform(transform_from_alignment(psi[r], ox[r], oy[r]))
                parts.append(new)
        return parts

    def _group_spectra(self, path, info, psize):
        """The per-group spectra as a SetOfImages, item id = frame, the key as its label."""
        spectra = self._createSetOfImages(suffix="Groups")
        spectra.setSamplingRate(psize)
        for group in info["groups"]["groups"]:
            img = Image(location=(group["frame"], path))
            img.setSamplingRate(psize)
            img.setObjId(group["frame"])
            img.setObjComment(f"{info['groups']['by']} {group['key']}: "
                              f"{group['segments']} segments")
            spectra.append(img)
        return spectra

    # --------------------------- INFO functions ------------------------------
    def _validate(self):
        obj = self.inputSet.get()
        if obj is None:
            return ["No input selected."]
        errors = self._input_errors(obj) + self.option_errors(OPTIONS)
        errors += self._class_errors(obj) + self._refine_errors(obj)
        missing = self.missing_files_error(obj)
        if missing:
            errors.append(missing)
        if (self.twist.get() or self.rise.get()) and not (self.rise.get() and
                                                          self.rise.get() > 0):
            errors.append("The overlay needs a positive rise (and a twist).")
        if self.csym.get() < 1:
            errors.append("The cyclic symmetry must be at least 1.")
        return errors

    def _input_errors(self, obj):
        errors = []
        if not obj.getSize():
            errors.append("The input set is empty.")
        if input_alignment(obj) not in (ALIGN_2D, ALIGN_PROJ) and not self._filament_angles(obj):
            errors.append(f"The input ({self.input_name()}) has no 2D alignment"
                          + (" and no filament angles (psi prior)" if self.form_value(
                              OPTIONS["angles"]) != "alignment" else "")
                          + ": the segments cannot be brought into their class frame. Use "
                          "aligned particles, 2D classes or segments picked along filaments.")
        rates = sampling_rates(obj)
        if len(rates) > 1:
            errors.append(f"Mixed sampling rates in the input ({', '.join(map(str, rates))} "
                          "A/px): the segments' spectra cannot be averaged.")
        images = obj.getImages() if is_classes(obj) else obj
        if self.ctfCorrection.get() == 1 and images is not None and not images.hasCTF():
            errors.append("CTF correction 'wiener' needs CTF parameters; the input particles "
                          "have none.")
        dim = obj.getDimensions() if not is_classes(obj) else _class_dim(obj)
        psize = rates[0] if rates else None
        diameter = self.tubeDiameter.get()
        if self.mask.get() == 0 and diameter and psize and dim and dim[0] \
                and diameter / psize > dim[0]:
            errors.append(f"The tube diameter ({diameter:g} A) is wider than "
                          f"the box ({dim[0]} px at {psize:g} A/px).")
        return errors

    def _refine_errors(self, obj):
        if not self.refinePsi.get():
            return []
        if not (is_classes(obj) and self.useClassAverages.get() and obj.hasRepresentatives()):
            return ["In-plane refinement needs class averages: a SetOfClasses2D with "
                    "representatives, and 'Use class averages?' on."]
        return []

    def _filament_angles(self, obj):
        """True when the form may turn the segments by their filament angles, and they have them."""
        return self.form_value(OPTIONS["angles"]) != "alignment" and has_psi_priors(obj)

    def _class_errors(self, obj):
        errors = []
        try:
            text = self.classIds.get()
            wanted = parse_class_list(text) if text and text.strip() else None
        except ValueError as exc:
            return [f"Classes: {exc}."]
        available = available_classes(obj)
        if is_classes(obj) and not available:
            errors.append("No enabled class in the input.")
        if wanted is not None:
            if not available:
                errors.append("Classes were selected but the input particles have no class ids.")
            elif not set(wanted) & set(available):
                errors.append(f"The selection {self.classIds.get()!r} is empty: the input has "
                              f"classes {', '.join(map(str, available))}.")
        return errors

    def _summary(self):
        info = self.read_sidecar(AVGPS_SIDECAR)
        if info is None:
            return [f"Input: {self.input_link()}; {self._selection_words()}."] + self._warnings()
        counts = info["segments_per_class"]
        lines = [f"{plural(info['segments'], 'segment')} averaged, from "
                 f"{plural(len(counts), 'class', 'classes')} "
                 f"({', '.join(f'{k}: {v}' for k, v in counts.items())}).",
                 f"Spectrum {info['padded_px']} x {info['padded_px']} px, sampling "
                 f"{info['pixel_size_a']:g} Å/px (real space; one Fourier pixel = "
                 f"{info['fourier_pixel_per_angstrom']:.5f} 1/Å), helical axis {info['axis']}."]
        for k, a in info.get("axis_angles", {}).items():
            lines.append(f"Class {k}: axis at {a['angle_deg']:.2f}° ({a['from']}).")
        if info.get("angles", {}).get("used") == "filament":
            lines.append("Segments turned by their filament angles (psi prior); "
                         f"{info['angles']['axis_check']['verdict']}.")
        if info.get("refinement"):
            r = info["refinement"]
            lines.append(f"In-plane refinement: {r['placed']} of {r['segments']} segments "
                         f"refined (psi changed by {r['psi_change_deg']['rms']:.2f}° RMS), "
                         f"{r['unplaceable']} unplaceable (outputParticles).")
        if info.get("groups"):
            groups = info["groups"]
            lines.append(f"{plural(len(groups['groups']), 'spectrum', 'spectra')} per "
                         f"{groups['by']} (outputGroupSpectra).")
        lines += _overlay_lines(info["parameters"])
        lines += [f"Note: {note}" for note in info.get("notes", [])]
        lines.append(f"PNG and JSON: {self._getExtraPath(AVGPS_PNG)}, "
                     f"{self._getExtraPath(AVGPS_SIDECAR)}")
        lines += self._warnings()
        return lines

    def _selection_words(self):
        chosen = (self.classIds.get() or "").strip()
        if chosen:
            return f"classes {chosen}"
        return "all enabled classes" if self._inputIsClasses() else "all particles"

    def _methods(self):
        info = self.read_sidecar(AVGPS_SIDECAR)
        if not info:
            return []
        text = methods_text({**info, "program": info["program"].replace(
            "spectools", "[spectools]", 1)})
        if info["parameters"].get("overlay"):
            text += (" The layer lines of the helical symmetry were predicted from helical "
                     "diffraction theory [Cochran1952] [DeRosier1970].")
        return [text]

    # --------------------------- UTILS functions -----------------------------
    def _overlay(self):
        if not (self.twist.get() and self.rise.get()):
            return None
        spec = {"twist": float(self.twist.get()), "rise": float(self.rise.get()),
                "csym": int(self.csym.get() or 1)}
        if self.diameter.get():
            spec["diameter"] = float(self.diameter.get())
        return spec

    def _class_averages(self, obj):
        """Class id -> class average (the classes' representatives), when they exist."""
        if not is_classes(obj) or not obj.hasRepresentatives():
            return None
        box = _class_dim(obj)[0]
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
                return None
            out[cls.getObjId()] = np.asarray(stack[image_index(index)], np.float32)
        return out or None


#: Files the steps hand on (removed once the spectra are written), in extra/.
STEPS_FOLDER = "avgps_steps"
PLAN_FILE = "avgps_plan.pickle"
PART_FILE = "avgps_part%03d.pickle"


def _group_rows(spectrum, part, parts):
    """Rows of the ``part``-th of ``parts`` groups of whole stack files (may be empty)."""
    n = len(spectrum.table)
    groups = spectrum.parts(max(1, -(-n // parts)))[part::parts]
    return np.concatenate(groups) if groups else np.zeros(0, np.int64)


#: Help of the overlay line (the command line takes the same values as one text).
OVERLAY_HELP = ("Draw the layer lines of a helical symmetry on the PNGs: twist (deg) and rise (Å) "
                "of the helix, optional cyclic symmetry and diameter (Å) for the first Bessel "
                "maxima. Leave twist and rise at 0 for no overlay.")


def _overlay_lines(parameters):
    """Summary lines for the overlay and resolution marks a run used."""
    lines = []
    overlay = parameters.get("overlay")
    if overlay:
        where = (f"first Bessel maxima for a {overlay['diameter']:g} Å diameter"
                 if overlay.get("diameter") else "marked at the picture's edges (no diameter)")
        lines.append(f"Predicted layer lines: twist {overlay['twist']:g}°, rise "
                     f"{overlay['rise']:g} Å, C{int(overlay.get('csym', 1))}; {where}.")
    marks = parameters.get("resolution_marks") or []
    if marks:
        lines.append("Resolution marks: " + ", ".join(f"{m:g}" for m in marks) + " Å.")
    return lines


def _class_dim(classes):
    for cls in classes.iterItems():
        if cls.isEnabled() and cls.getSize():
            return cls.getDimensions()
    return None
