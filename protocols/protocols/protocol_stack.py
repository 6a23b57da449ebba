"""Aligned stacks (``spectools stack`` in Scipion)."""
import os

import pyworkflow.protocol.params as params
from pwem.constants import ALIGN_2D, ALIGN_PROJ
from pwem.objects import SetOfParticles

from spectools.pipelines.aligned_stack import AXES, OPTIONS, StackOptions, output_table, run_stack
from spectools.pipelines.inputs import checked_table
from spectools.pipelines.workers import available_cpus

from ..constants import STACK_BASENAME, STACK_FORMAT_LABELS, STACK_FORMATS, STACK_SIDECAR
from ..convert import sampling_rates, table_from_set, transform_from_alignment
from .protocol_base import SpectoolsProtocol, add_matrix_form_param, add_option_param, plural

#: What the methods text says of each kernel.
KERNEL_WORDS = {"sinc": "a windowed-sinc rotation by three shears [Unser1995] and shift",
                "fourier": "an exact Fourier rotation by three shears [Unser1995] and shift",
                "cubic": "cubic B-spline interpolation", "linear": "bilinear interpolation"}


class SpectoolsProtAlignedStack(SpectoolsProtocol):
    """Aligned stack: every particle resampled once into its class frame.

    The same pipeline as the command `spectools stack`: camera-raster lines
    suppressed where found, then one windowed-sinc resampling per particle
    (or exact Fourier / cubic / RELION's bilinear), corners filled
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
    _inputName = "inputParticles"
    _vocabulary = OPTIONS
    #: The exact rotation by three shears (the default kernel).
    _references = ["Unser1995"]

    # --------------------------- DEFINE param functions ----------------------
    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputParticles", params.PointerParam, pointerClass="SetOfParticles",
                      important=True, label="Aligned particles",
                      help="Particles with a 2D alignment (or a projection alignment: its "
                           "in-plane part is used).")
        add_matrix_form_param(form)
        form.addSection(label="Stack")
        form.addParam("outputFormat", params.EnumParam, choices=list(STACK_FORMAT_LABELS),
                      default=0, display=params.EnumParam.DISPLAY_HLIST, label="Format",
                      help="MRC stack (.mrcs) or SPIDER stack (.spi, with a SPIDER doc).")
        for name in ("interpolation", "raster", "fill", "axis", "apply_shift", "box"):
            add_option_param(form, OPTIONS[name])
        add_option_param(form, OPTIONS["float16"], condition="outputFormat == 0")
        form.addParallelSection(threads=available_cpus(), mpi=0)

    # --------------------------- INSERT steps functions ----------------------
    def _insertAllSteps(self):
        self._insertFunctionStep(self.alignStep, self._parameters())
        self._insertFunctionStep(self.createOutputStep)

    def _options(self, **fixed):
        float16 = bool(self.float16.get()) and self.outputFormat.get() == 0
        return self.form_options(StackOptions, OPTIONS, float16=float16, **fixed)

    def _parameters(self):
        options = self._options()
        return {"matrix_form": self.matrix_form(), "format": self._format(),
                "interpolation": options.interpolation, "raster": options.raster,
                "fill": options.fill,
                "axis": options.axis, "apply_shift": options.apply_shift,
                "box": options.box or 0, "float16": options.float16}

    def _format(self):
        return STACK_FORMATS[self.outputFormat.get()]

    def _stack_path(self):
        return self._getExtraPath(f"{STACK_BASENAME}.{self._format()}")

    def _table(self, form):
        table = table_from_set(self.inputParticles.get(), form=form, source=self.input_name())
        return checked_table(table)

    # --------------------------- STEPS functions -----------------------------
    def alignStep(self, parameters):
        table = table_from_set(self.inputParticles.get(), form=parameters["matrix_form"],
                               source=self.input_name())
        summary = self.run_job(run_stack, table, self._stack_path(),
                               self._options(workers=self.threads()), front_end="scipion",
                               context=self.context(), show_progress=False)
        self.log_lines(f"wrote {f}" for f in summary["files"])
        self.log_lines(f"note: {n}" for n in summary["notes"])

    def createOutputStep(self):
        options = self._options()
        table, box, _ = self._table(self.matrix_form())
        stack = self._stack_path()
        meta = output_table(table, stack, turn_deg=AXES[options.axis],
                            apply_shift=options.apply_shift, box=options.box or box).data
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
        errors = self.option_errors(OPTIONS)
        if not parts.getSize():
            errors.append("The input set is empty.")
        if parts.getAlignment() not in (ALIGN_2D, ALIGN_PROJ):
            errors.append(f"The input ({self.input_name()}) has no 2D alignment "
                          f"(alignment: {parts.getAlignment()}); there is nothing to apply.")
        rates = sampling_rates(parts)
        if len(rates) > 1:
            errors.append(f"Mixed sampling rates in the input ({', '.join(map(str, rates))} "
                          "Å/px).")
        missing = self.missing_files_error(parts)
        if missing:
            errors.append(missing)
        return errors

    def _summary(self):
        info = self.read_sidecar(STACK_SIDECAR)
        if info is None:
            return [f"Input: {self.input_link()}."] + self._warnings()
        lines = [f"{plural(info['particles'], 'particle')} aligned into {info['files'][0]} "
                 f"({info['box_px']} px, {info['interpolation']} interpolation, fill "
                 f"{info['fill']}, helical axis {info['axis']}, shifts "
                 f"{'applied' if info['shift_applied'] else 'not applied'}).",
                 "Beside it: " + ", ".join(os.path.basename(f) for f in info["files"][1:]) + "."]
        return lines + self._warnings()

    def _methods(self):
        info = self.read_sidecar(STACK_SIDECAR)
        if info is None:
            return []
        kernel = KERNEL_WORDS[info["interpolation"]]
        n = info["particles"]
        return [f"{plural(n, 'particle')} {'was' if n == 1 else 'were'} resampled once into "
                f"{'its' if n == 1 else 'their'} class frame with "
                f"{info['program'].replace('spectools', '[spectools]', 1)} ({kernel}), carrying "
                f"{'its' if n == 1 else 'their'} CTF with the astigmatism angle turned with "
                "the image."]
