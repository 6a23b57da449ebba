"""Aligned stacks (``spectools stack`` in Scipion)."""
import os

import pyworkflow.protocol.params as params
from pwem.constants import ALIGN_2D, ALIGN_PROJ
from pwem.objects import SetOfParticles
from pwem.protocols import EMProtocol

from spectools import __version__
from spectools.pipelines.aligned_stack import output_table, write_aligned_stack
from spectools.pipelines.inputs import checked_table
from spectools.ops.resample import INTERPOLATIONS

from ..convert import sampling_rates, table_from_set, transform_from_alignment
from .common import (add_matrix_form_param, matrix_form, provenance_warning, read_json,
                     threads)

FORMATS = ("mrcs", "spi")
FORMAT_LABELS = ("MRC stack", "SPIDER stack")
FILLS = ("mean", "noise", "zero")
AXES = ("horizontal", "vertical")


class SpectoolsProtAlignedStack(EMProtocol):
    """Aligned stack: every particle resampled once into its class frame.

    The same pipeline as the command `spectools stack`: one exact Fourier
    resampling per particle (or cubic / RELION's bilinear), corners filled
    with the mean, noise or zero. The stack (MRC or SPIDER) goes to the run's
    extra folder with a RELION STAR, a cryoSPARC .cs (and a SPIDER doc for
    SPIDER output) and a JSON sidecar, so external tools can use it.

    Output: a SetOfParticles pointing at the aligned stack, with identity
    transforms (the images are aligned; with the vertical axis the transform is
    the 90-degree turn back to the class frame, without shifts applied it holds
    the shift not applied), class ids carried, and the CTFs carried with the
    astigmatism angle turned with the image.
    """
    _label = "aligned stack"
    _possibleOutputs = {"outputParticles": SetOfParticles}

    # --------------------------- DEFINE param functions ----------------------
    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputParticles", params.PointerParam, pointerClass="SetOfParticles",
                      important=True, label="Aligned particles",
                      help="Particles with a 2D alignment (or a projection alignment: its "
                           "in-plane part is used).")
        add_matrix_form_param(form)
        form.addSection(label="Stack")
        form.addParam("outputFormat", params.EnumParam, choices=list(FORMAT_LABELS), default=0,
                      display=params.EnumParam.DISPLAY_HLIST, label="Format")
        form.addParam("interpolation", params.EnumParam, choices=list(INTERPOLATIONS),
                      default=0, label="Interpolation",
                      help="fourier: exact for band-limited images (default); cubic: "
                           "prefiltered B-spline; linear: RELION's relion_stack_create "
                           "--apply_transformation.")
        form.addParam("fill", params.EnumParam, choices=list(FILLS), default=0,
                      display=params.EnumParam.DISPLAY_HLIST, label="Fill",
                      help="Value of the corners a rotation uncovers.")
        form.addParam("axis", params.EnumParam, choices=list(AXES), default=0,
                      display=params.EnumParam.DISPLAY_HLIST, label="Helical axis",
                      help="horizontal: the class frame (RELION); vertical: turned by +90 "
                           "degrees (SPIDER, EMAN2, HILL).")
        form.addParam("applyShift", params.BooleanParam, default=True, label="Apply shifts",
                      help="No: rotate about the box centre only; the shifts stay in the "
                           "output's transforms.")
        form.addParam("box", params.IntParam, default=0, validators=[params.GE(0)],
                      label="Output box (px)", help="Crop or pad after aligning. 0: as input.")
        form.addParam("float16", params.BooleanParam, default=False,
                      condition="outputFormat == 0", expertLevel=params.LEVEL_ADVANCED,
                      label="16-bit floats", help="MRC mode 12.")
        form.addParallelSection(threads=2, mpi=0)

    # --------------------------- INSERT steps functions ----------------------
    def _insertAllSteps(self):
        self._insertFunctionStep(self.alignStep, self._parameters())
        self._insertFunctionStep(self.createOutputStep)

    def _parameters(self):
        return {"matrix_form": matrix_form(self), "format": FORMATS[self.outputFormat.get()],
                "interpolation": INTERPOLATIONS[self.interpolation.get()],
                "fill": FILLS[self.fill.get()], "axis": AXES[self.axis.get()],
                "apply_shift": bool(self.applyShift.get()), "box": int(self.box.get() or 0),
                "float16": bool(self.float16.get()) and self.outputFormat.get() == 0}

    def _stack_path(self, fmt=None):
        fmt = fmt or FORMATS[self.outputFormat.get()]
        return self._getExtraPath(f"aligned.{fmt}")

    def _table(self, form):
        table = table_from_set(self.inputParticles.get(), form=form,
                               source=self._input_name())
        return checked_table(table)

    # --------------------------- STEPS functions -----------------------------
    def alignStep(self, p):
        table, box, notes = self._table(p["matrix_form"])
        for note in notes:
            self.info(note)
        summary = write_aligned_stack(
            table, self._stack_path(p["format"]), interpolation=p["interpolation"],
            fill=p["fill"], axis=p["axis"], apply_shift=p["apply_shift"], box=p["box"] or None,
            float16=p["float16"], workers=threads(self), show_progress=False, parameters=p)
        for f in summary["files"]:
            self.info(f"wrote {f}")

    def createOutputStep(self):
        p = self._parameters()
        table, box, _ = self._table(p["matrix_form"])
        stack = self._stack_path(p["format"])
        out_box = p["box"] or box
        meta = output_table(table, stack, turn_deg=90 if p["axis"] == "vertical" else 0,
                            apply_shift=p["apply_shift"], box=out_box).data
        inputs = self.inputParticles.get()
        parts = self._createSetOfParticles()
        parts.copyInfo(inputs)
        parts.setAlignment2D()
        rows = {int(i): r for r, i in enumerate(table.data["scipion_id"].to_numpy())}
        psi, ox, oy = (meta[c].to_numpy(float) for c in ("psi_deg", "origin_x_px",
                                                          "origin_y_px"))
        angles = meta["defocus_angle_deg"].to_numpy(float) if "defocus_angle_deg" in meta \
            else None
        location = os.path.relpath(stack)  # steps run in the project folder
        for particle in inputs.iterItems(orderBy="id"):
            r = rows[particle.getObjId()]
            new = particle.clone()
            new.setLocation(r + 1, location)
            new.setTransform(transform_from_alignment(psi[r], ox[r], oy[r]))
            if angles is not None and new.hasCTF():
                ctf = new.getCTF()
                ctf.setStandardDefocus(ctf.getDefocusU(), ctf.getDefocusV(), float(angles[r]))
            parts.append(new)
        self._defineOutputs(outputParticles=parts)
        self._defineSourceRelation(self.inputParticles, parts)

    # --------------------------- INFO functions ------------------------------
    def _validate(self):
        parts = self.inputParticles.get()
        if parts is None:
            return ["No input selected."]
        errors = []
        if not parts.getSize():
            errors.append("The input set is empty.")
        if parts.getAlignment() not in (ALIGN_2D, ALIGN_PROJ):
            errors.append(f"The input ({self._input_name()}) has no 2D alignment "
                          f"(alignment: {parts.getAlignment()}); there is nothing to apply.")
        rates = sampling_rates(parts)
        if len(rates) > 1:
            errors.append(f"Mixed sampling rates in the input ({', '.join(map(str, rates))} "
                          "A/px).")
        return errors

    def _warnings(self):
        warning = provenance_warning(self, self.inputParticles)
        return [warning] if warning else []

    def _summary(self):
        info = read_json(self._getExtraPath("aligned.json"))
        if info is None:
            return [f"Input: {self._input_name()}."]
        lines = [f"{info['particles']} particles aligned into {info['files'][0]} "
                 f"({info['box_px']} px, {info['interpolation']} interpolation, fill "
                 f"{info['fill']}, helical axis {info['axis']}, shifts "
                 f"{'applied' if info['shift_applied'] else 'not applied'}).",
                 "Beside it: " + ", ".join(os.path.basename(f) for f in info["files"][1:]) + "."]
        warning = provenance_warning(self, self.inputParticles)
        if warning:
            lines.append(warning)
        return lines

    def _methods(self):
        info = read_json(self._getExtraPath("aligned.json"))
        if info is None:
            return []
        kernel = {"fourier": "an exact Fourier rotation and shift",
                  "cubic": "cubic B-spline interpolation",
                  "linear": "bilinear interpolation"}[info["interpolation"]]
        return [f"{info['particles']} particles were resampled once into their class frame "
                f"with spectools {__version__} [spectools] ({kernel}), carrying their CTF with "
                "the astigmatism angle turned with the image."]

    def _input_name(self):
        obj = self.inputParticles.get()
        return f"{type(obj).__name__} {obj.getObjLabel() or obj.getNameId()}" if obj else ""
