"""Import cryoSPARC particles (.cs) into Scipion without cryoSPARC or pyem."""
import os

import numpy as np

import pyworkflow.protocol.params as params
import pyworkflow.utils as pwutils
from pwem.objects import (Acquisition, CTFModel, Particle, SetOfClasses2D, SetOfParticles,
                          Transform)
from pwem.protocols import ProtImport

from spectools import __version__
from spectools.errors import SpectoolsError
from spectools.formats import cryosparc
from spectools.io.stacks import stack_header
from spectools.pipelines.inputs import OPTICS_OPTIONS, READ_OPTIONS, checked_table

from ..constants import CS2D_CONVENTION_LABELS
from ..convert import matrix_from_alignment, projection_matrix
from .protocol_base import PluginLabel, add_option_param, plural

CONVENTIONS = cryosparc.CS2D_CONVENTIONS
#: Validation reads the .cs up to this size (bytes); larger files are checked by the run.
VALIDATE_READ_LIMIT = 200 * 1024 ** 2


class SpectoolsProtImportCryosparc(PluginLabel, ProtImport):
    """Import particles from a cryoSPARC .cs file (and its passthrough).

    Reads the .cs with spectools (no cryoSPARC installation, no pyem):
    stacks, pixel size, 2D alignment (alignments2D/pose and shift; 3D poses
    become a projection alignment), CTF, and class labels. Scipion class id =
    cryoSPARC class + 1. The stacks are linked (or copied) into the run's
    extra folder. With the job's class averages (*_class_averages.mrc) a
    SetOfClasses2D is made as well, class k's average being frame k.

    The 2D matrices are written with pwem's meaning, aligned = M · raw
    ([R(psi) | R(psi) origin] in RELION terms; conventions/scipion.md), not the
    [R(psi) | origin] the RELION and cryoSPARC plugins build.
    """
    _label = "import cryoSPARC particles"
    _possibleOutputs = {"outputParticles": SetOfParticles, "outputClasses": SetOfClasses2D}
    #: cryoSPARC wrote the files; spectools reads 2D poses as pyem does.
    _references = ["Punjani2017", "Asarnow2019"]

    # --------------------------- DEFINE param functions ----------------------
    def _defineParams(self, form):
        form.addSection(label="Import")
        form.addParam("csFile", params.PathParam, important=True, label="Particles .cs file",
                      help="e.g. J42_020_particles.cs (or an exported particles .cs).")
        add_option_param(form, READ_OPTIONS["passthrough"], label="Passthrough .cs (optional)",
                         help=READ_OPTIONS["passthrough"].help + " CTF and locations usually "
                         "live there, and so do the images when the particles .cs is a job's "
                         "alignment-only output.")
        form.addParam("classAveragesFile", params.PathParam, allowsNull=True,
                      label="Class averages (optional)",
                      help="e.g. J42_020_class_averages.mrc: also output a SetOfClasses2D "
                           "(class k's average is frame k).")
        add_option_param(form, READ_OPTIONS["stack_dirs"], label="Stacks folder (optional)",
                         help="Another folder to look for the stacks in, besides the .cs file's "
                              "folder and its parents (where cryoSPARC project paths point).")
        add_option_param(form, READ_OPTIONS["cs2d_convention"],
                         choices=CS2D_CONVENTION_LABELS)
        add_option_param(form, READ_OPTIONS["pixel_size_a"], expertLevel=params.LEVEL_ADVANCED,
                         help=READ_OPTIONS["pixel_size_a"].help + " Empty: blob/psize_A of "
                         "the .cs.")
        form.addParam("copyFiles", params.BooleanParam, default=False,
                      expertLevel=params.LEVEL_ADVANCED, label="Copy stacks?",
                      help="Copy the stacks into the run's extra folder. No (default): "
                           "symbolic links.")
        group = form.addGroup("Acquisition (used when the .cs has none)")
        add_option_param(group, OPTICS_OPTIONS["voltage_kv"], default=300.0)
        add_option_param(group, OPTICS_OPTIONS["cs_mm"], default=2.7)
        add_option_param(group, OPTICS_OPTIONS["amplitude_contrast"], default=0.1)

    # --------------------------- INSERT steps functions ----------------------
    def _insertAllSteps(self):
        self._insertFunctionStep(self.importStep, self._parameters())

    def _parameters(self):
        def path(param):
            value = param.get()
            return os.path.abspath(value) if value else None
        return {"cs": path(self.csFile), "passthrough": path(self.passthrough),
                "class_averages": path(self.classAveragesFile),
                "stack_dir": path(self.stackDirs),
                "convention": CONVENTIONS[self.cs2dConvention.get()],
                "pixel_size": float(self.pixelSize.get() or 0.0),
                "copy": bool(self.copyFiles.get())}

    # --------------------------- STEPS functions -----------------------------
    def importStep(self, p):
        table, box = self._read(p)
        d = table.data
        links = self._link_stacks(sorted(set(d["image_path"])), p["copy"], "stacks")
        psize = float(d["pixel_size_a"].iloc[0])

        parts = self._createSetOfParticles()
        parts.setSamplingRate(psize)
        parts.setAcquisition(self._acquisition(table))
        projection = table.has("rot_deg", "tilt_deg")
        aligned = table.has_alignment_2d
        if projection:
            parts.setAlignmentProj()
        elif aligned:
            parts.setAlignment2D()
        has_ctf = table.has("defocus_u_a", "defocus_v_a", "defocus_angle_deg")
        parts.setHasCTF(has_ctf)
        classes = d["class_number"].to_numpy() if table.has("class_number") else None
        if aligned and not projection:
            matrices = matrix_from_alignment(*table.alignment())
        for r in range(len(d)):
            row = d.iloc[r]
            particle = Particle(location=(int(row["image_index"]) + 1,
                                          links[row["image_path"]]))
            particle.setObjId(r + 1)
            if projection:
                particle.setTransform(Transform(projection_matrix(
                    row["rot_deg"], row["tilt_deg"], row["psi_deg"], row["origin_x_px"],
                    row["origin_y_px"])))
            elif aligned:
                particle.setTransform(Transform(matrices[r]))
            if has_ctf:
                ctf = CTFModel()
                ctf.setStandardDefocus(float(row["defocus_u_a"]), float(row["defocus_v_a"]),
                                       float(row["defocus_angle_deg"]))
                if "phase_shift_deg" in d and np.isfinite(row["phase_shift_deg"]):
                    ctf.setPhaseShift(float(row["phase_shift_deg"]))
                particle.setCTF(ctf)
            if classes is not None:
                particle.setClassId(int(classes[r]))
            parts.append(particle)
        outputs = {"outputParticles": parts}

        if p["class_averages"] and classes is not None:
            averages = self._link_stacks([p["class_averages"]], p["copy"], "")[
                p["class_averages"]]
            n_frames = stack_header(p["class_averages"]).n
            out = self._createSetOfClasses2D(parts)

            def represent(cls):
                frame = cls.getObjId() - 1 + table.class_base  # cryoSPARC class k = frame k
                if 0 <= frame < n_frames:
                    cls.getRepresentative().setLocation(frame + 1, averages)
                    cls.getRepresentative().setSamplingRate(psize)

            out.classifyItems(updateClassCallback=represent)
            outputs["outputClasses"] = out
        self._defineOutputs(**outputs)
        if "outputClasses" in outputs:
            self._defineSourceRelation(parts, outputs["outputClasses"])

    # --------------------------- UTILS functions -----------------------------
    def _read(self, p):
        table = cryosparc.read(p["cs"], passthrough=p["passthrough"],
                               cs2d_convention=p["convention"],
                               pixel_size_a=p["pixel_size"] or None,
                               search_dirs=[p["stack_dir"]] if p["stack_dir"] else ())
        table, box, notes = checked_table(table, need_alignment=False)
        for note in notes:
            self.info(note)
        for note in table.assumptions:
            self.info(f"assumed: {note}")
        psizes = np.unique(np.round(table.data["pixel_size_a"].to_numpy(float), 6))
        if len(psizes) > 1 or not np.isfinite(psizes).all():
            raise SpectoolsError(f"mixed or unknown pixel sizes {list(psizes)}; give the pixel "
                                 "size", p["cs"])
        return table, box

    def _acquisition(self, table):
        acq = Acquisition()
        d = table.data
        values = {}
        for col, param in (("voltage_kv", self.voltage), ("cs_mm", self.cs),
                           ("amplitude_contrast", self.amplitudeContrast)):
            v = d[col].to_numpy(float) if col in d else np.array([np.nan])
            values[col] = float(v[0]) if np.isfinite(v[0]) else float(param.get())
            if col in d and len(np.unique(v)) > 1:
                self.info(f"several values of {col} in the .cs; the set keeps {v[0]}")
        acq.setVoltage(values["voltage_kv"])
        acq.setSphericalAberration(values["cs_mm"])
        acq.setAmplitudeContrast(values["amplitude_contrast"])
        acq.setMagnification(50000)
        return acq

    def _link_stacks(self, paths, copy, sub):
        """Absolute path -> project-relative path of its link (or copy) in extra/."""
        folder = self._getExtraPath(sub) if sub else self._getExtraPath()
        pwutils.makePath(folder)
        out, used = {}, set()
        for i, src in enumerate(paths):
            name = os.path.basename(src)
            if name in used:
                name = f"{i:04d}_{name}"
            used.add(name)
            dst = os.path.join(folder, name)
            if not os.path.exists(dst):
                (pwutils.copyFile if copy else pwutils.createAbsLink)(src, dst)
            out[src] = os.path.relpath(dst)
        return out

    # --------------------------- INFO functions ------------------------------
    def _validate(self):
        errors = []
        for param, what in ((self.csFile, "particles .cs"), (self.passthrough, "passthrough"),
                            (self.classAveragesFile, "class averages")):
            value = param.get()
            if value and not os.path.isfile(value):
                errors.append(f"The {what} file {value} does not exist.")
        if not self.csFile.get():
            errors.append("Give the particles .cs file.")
        if errors:
            return errors
        if os.path.getsize(self.csFile.get()) <= VALIDATE_READ_LIMIT:
            try:
                self._read(self._parameters())
            except SpectoolsError as exc:
                errors.append(str(exc))
            except Exception as exc:  # unreadable file: say so before running
                errors.append(f"{self.csFile.get()}: {exc}")
        return errors

    def _summary(self):
        if not hasattr(self, "outputParticles"):
            return [f"File: {self.csFile.get()}"]
        parts = self.outputParticles
        lines = [f"{plural(parts.getSize(), 'particle')} from {self.csFile.get()}"
                 + (f" (+ {self.passthrough.get()})" if self.passthrough.get() else "")
                 + f", {parts.getSamplingRate():g} Å/px, alignment {parts.getAlignment()}, "
                   f"{'with' if parts.hasCTF() else 'no'} CTF.",
                 f"cryoSPARC 2D poses read with the "
                 f"{CONVENTIONS[self.cs2dConvention.get()]!r} convention."]
        if hasattr(self, "outputClasses"):
            lines.append(f"{plural(self.outputClasses.getSize(), 'class', 'classes')} with "
                         "their averages "
                         f"(Scipion class id = cryoSPARC class + 1).")
        return lines

    def _methods(self):
        if not hasattr(self, "outputParticles"):
            return []
        n = self.outputParticles.getSize()
        return [f"{plural(n, 'particle')} and {'its' if n == 1 else 'their'} cryoSPARC [Punjani2017] "
                f"alignment {'was' if n == 1 else 'were'} imported with [spectools] {__version__}, "
                "reading 2D poses as pyem does [Asarnow2019]."]
