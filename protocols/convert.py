"""Scipion objects <-> spectools' model (``conventions/scipion.md``).

The one place where Scipion's ``Transform`` matrices meet spectools'
``q = F^m R(psi) (p + o)`` (``conventions/model.md``).

Matrices, as pwem states them
-----------------------------
* ``ALIGN_2D``: ``q = M · p`` (aligned = M · raw), ``p, q = (x, y, 0, 1)``,
  shifts in pixels of the set's sampling rate, mirror when
  ``det(M[:2,:2]) < 0``.  Rows/columns 0, 1, 3 of ``M`` are exactly
  ``spectools.ops.geometry.affine_matrix(psi, ox, oy, mirror)``, so reading is
  :func:`spectools.ops.geometry.alignment_from_matrix` and writing is
  ``affine_matrix``.
* ``ALIGN_PROJ``: ``M = inv([A(rot, tilt, psi) | -o])`` (RELION's Euler matrix
  and origin); its in-plane part is psi with the origins, as RELION's
  ``stack_create`` uses it; ``rot``/``tilt`` are carried.

The RELION and cryoSPARC plugins' ``[R(psi) | o]``
--------------------------------------------------
scipion-em-relion and scipion-em-cryosparc2 build ``ALIGN_2D`` matrices as
``[R(psi) | o]`` with the RELION origin ``o`` placed *after* the rotation
(RELION's pre-2019 ``stack_create``), whereas pwem's meaning of the same
matrix, RELION >= 3.0.1 and pwem's own ``ALIGN_PROJ`` put it before:
``[R(psi) | R(psi) o]``.  This module follows pwem by default
(``form="pwem"``); ``form="relion-plugin"`` reads a matrix the way those
plugins wrote it (``psi`` = angle of ``M``, ``o = M[:2, 3]``), which gives
back the RELION numbers the plugin imported.  Which one a set needs cannot
be read off the matrix; :func:`plugin_protocols_upstream` finds the
protocols of those plugins in a set's provenance so that a protocol can warn.
In power spectra the layer lines do not move (a shift only changes Fourier
phases; the mask cuts a little differently); aligned stacks are off by
``R(psi) o - o``.

Everything written by this plugin (the cryoSPARC import, the aligned stack)
uses pwem's meaning.
"""
import os

import numpy as np
import pandas as pd

from pwem.constants import ALIGN_2D, ALIGN_NONE, ALIGN_PROJ
from pwem.convert.transformations import euler_from_matrix, euler_matrix
from pwem.objects import Transform

from spectools.errors import SpectoolsError
from spectools.formats.paths import clean_raw_path
from spectools.particles import ParticleTable
from spectools.ops.geometry import affine_matrix, alignment_from_matrix

#: How ALIGN_2D matrices are read: pwem's stated meaning, or the RELION and
#: cryoSPARC plugins' [R(psi) | o].
PWEM = "pwem"
RELION_PLUGIN = "relion-plugin"
MATRIX_FORMS = (PWEM, RELION_PLUGIN)
MATRIX_FORM_LABELS = ("pwem: aligned = M · raw (default)",
                      "RELION/cryoSPARC plugins: M = [R(psi) | origin]")
#: The form's label of that choice (an advanced parameter).
MATRIX_FORM_PARAM_LABEL = "Alignment matrices"

#: Plugins whose 2D readers build [R(psi) | o] (module prefixes).
LEGACY_2D_PLUGINS = ("relion", "cryosparc2")


# --------------------------------------------------------------------------
# Matrices


def matrix_from_alignment(psi_deg, origin_x_px, origin_y_px, mirror=False):
    """Scipion ``ALIGN_2D`` 4x4 matrix(es) of the model's alignment: ``q = M p``.

    Arguments broadcast; the result has shape ``broadcast + (4, 4)``.
    """
    a = affine_matrix(psi_deg, origin_x_px, origin_y_px, mirror)
    m = np.zeros(a.shape[:-2] + (4, 4))
    m[..., :2, :2] = a[..., :2, :2]
    m[..., :2, 3] = a[..., :2, 2]
    m[..., 2, 2] = m[..., 3, 3] = 1.0
    return m


def alignment_from_matrices(matrices, alignment=ALIGN_2D, form=PWEM):
    """Decompose Scipion matrices into the model's columns.

    Parameters
    ----------
    matrices : array (N, 4, 4)
    alignment : ``ALIGN_2D`` or ``ALIGN_PROJ``
    form : ``"pwem"`` or ``"relion-plugin"``
        How to read ``ALIGN_2D`` (see the module docstring); ignored for
        ``ALIGN_PROJ``.

    Returns
    -------
    dict
        ``psi_deg``, ``origin_x_px``, ``origin_y_px``, ``mirror`` (and
        ``rot_deg``, ``tilt_deg`` for ``ALIGN_PROJ``), arrays of length N.
    """
    m = np.asarray(matrices, dtype=float).reshape(-1, 4, 4)
    if form not in MATRIX_FORMS:
        raise SpectoolsError(f"unknown matrix form {form!r}; choose {' or '.join(MATRIX_FORMS)}")
    if alignment == ALIGN_2D:
        sub = m[:, [0, 1, 3]][:, :, [0, 1, 3]]
        if form == PWEM:
            psi, ox, oy, mirror = alignment_from_matrix(sub)
        else:
            mirror = np.linalg.det(sub[:, :2, :2]) < 0
            if mirror.any():
                raise SpectoolsError(f"{int(mirror.sum())} matrices are mirrored; the RELION/"
                                     "cryoSPARC plugins' [R(psi) | origin] form has no mirror")
            psi = np.rad2deg(np.arctan2(sub[:, 1, 0], sub[:, 0, 0]))
            ox, oy = sub[:, 0, 2], sub[:, 1, 2]
        return {"psi_deg": psi, "origin_x_px": ox, "origin_y_px": oy, "mirror": mirror}
    if alignment == ALIGN_PROJ:
        rot, tilt, psi, ox, oy = (np.empty(len(m)) for _ in range(5))
        for i, one in enumerate(m):
            inv = np.linalg.inv(one)  # [A | -o]
            rot[i], tilt[i], psi[i] = -np.rad2deg(euler_from_matrix(inv, axes="szyz"))
            ox[i], oy[i] = -inv[0, 3], -inv[1, 3]
        return {"psi_deg": psi, "origin_x_px": ox, "origin_y_px": oy,
                "mirror": np.zeros(len(m), bool), "rot_deg": rot, "tilt_deg": tilt}
    raise SpectoolsError(f"alignment {alignment!r} is not an in-plane alignment "
                         "(need 2D or Projection)")


def projection_matrix(rot_deg, tilt_deg, psi_deg, origin_x_px, origin_y_px):
    """Scipion ``ALIGN_PROJ`` matrix ``inv([A(rot, tilt, psi) | -o])`` (as the plugins write it)."""
    a = euler_matrix(*np.deg2rad([-rot_deg, -tilt_deg, -psi_deg]), axes="szyz")
    a[0, 3], a[1, 3], a[2, 3] = -origin_x_px, -origin_y_px, 0.0
    return np.linalg.inv(a)


def transform_from_alignment(psi_deg, origin_x_px, origin_y_px, mirror=False):
    """A pwem ``Transform`` holding the ``ALIGN_2D`` matrix of one particle."""
    return Transform(matrix_from_alignment(psi_deg, origin_x_px, origin_y_px, mirror))


# --------------------------------------------------------------------------
# Locations


def image_file(filename):
    """Absolute path of an image location's file (Scipion may append ``:mrcs``)."""
    return os.path.abspath(clean_raw_path(filename))


def image_index(index):
    """Scipion's 1-based index (0 = a single-image file) -> spectools' 0-based one."""
    index = int(index or 0)
    return index - 1 if index > 0 else 0


# --------------------------------------------------------------------------
# Sets -> ParticleTable


def is_classes(obj):
    """True for a SetOfClasses (2D)."""
    return hasattr(obj, "iterClassItems")


def input_alignment(obj):
    """Alignment type of a SetOfParticles, or of the classes' particles."""
    if is_classes(obj):
        for cls in obj.iterItems():
            if cls.isEnabled() and cls.getSize():
                return cls.getAlignment()
        images = obj.getImages()
        return images.getAlignment() if images is not None else ALIGN_NONE
    return obj.getAlignment()


def available_classes(obj):
    """Class ids present: enabled classes of a SetOfClasses, or particles' class ids."""
    if is_classes(obj):
        return sorted(cls.getObjId() for cls in obj.iterItems() if cls.isEnabled())
    try:
        values = obj.getUniqueValues("_classId")
    except Exception:  # no class column in the set
        return []
    return sorted(int(v) for v in values if v is not None)


def image_sets(obj):
    """The particle sets of ``obj``, one at a time: itself, or the enabled classes of a
    SetOfClasses.

    A generator, not a list: Scipion iterates a set through one reused item
    object, so a list of classes would hold the last class as many times.
    """
    if not is_classes(obj):
        yield obj
        return
    for item in obj.iterItems():
        if item.isEnabled():
            yield item


def missing_image_files(obj):
    """(missing files, number of files) of the images a set names (classes: enabled ones).

    Reads the distinct file names from the set's database, not every item.
    """
    files = set()
    for items in image_sets(obj):
        try:
            names = items.getUniqueValues("_filename")
        except Exception:  # a set without a file-name column
            names = [item.getFileName() for item in items.iterItems()]
        files.update(image_file(name) for name in names if name)
    missing = sorted(f for f in files if not os.path.exists(f))
    return missing, len(files)


def sampling_rates(obj):
    """Distinct sampling rates of the set and of its items (classes: of every class)."""
    rates = set()
    for s in image_sets(obj):
        if s.getSamplingRate():
            rates.add(round(float(s.getSamplingRate()), 6))
        try:
            values = s.getUniqueValues("_samplingRate")
        except Exception:
            values = []
        rates.update(round(float(v), 6) for v in values if v)
    return sorted(rates)


def table_from_set(obj, *, class_ids=None, form=PWEM, need_alignment=True, source=""):
    """A :class:`~spectools.particles.ParticleTable` of a SetOfParticles or SetOfClasses2D.

    Parameters
    ----------
    obj : SetOfParticles or SetOfClasses2D
        Classes: the particles of the enabled classes, ``class_number`` = the
        class id.  Particles: ``class_number`` = each particle's class id when
        it has one.
    class_ids : iterable of int, optional
        Keep only these classes.
    form : ``"pwem"`` or ``"relion-plugin"``
        How to read ``ALIGN_2D`` matrices (module docstring).
    need_alignment : bool
        Raise when the set has no 2D or projection alignment.

    Returns
    -------
    ParticleTable
        Absolute image paths, 0-based indices, pixel size and box, alignment,
        classes, CTF and optics, in the set's order (classes: by class id,
        then particle id); column ``scipion_id`` holds each particle's id.
    """
    wanted = None if class_ids is None else {int(c) for c in class_ids}
    source_set = _SourceSet.of(obj, wanted)
    if need_alignment and source_set.alignment not in (ALIGN_2D, ALIGN_PROJ):
        raise SpectoolsError(f"has no in-plane alignment (alignment {source_set.alignment!r}); "
                             "nothing to impose", source or None)
    rows, matrices = _particle_rows(source_set, wanted)
    if not rows["image_path"]:
        raise SpectoolsError("the selection holds no particles", source or None)
    data = _table_data(rows, source_set, matrices, form)
    table = ParticleTable(data, source=source, source_format="scipion", class_base=1,
                          format_detail=f"Scipion {type(obj).__name__} (alignment "
                                        f"{source_set.alignment}, matrices read as {form})")
    if source_set.alignment == ALIGN_2D and form == RELION_PLUGIN:
        table.assumptions.append("2D matrices read in the RELION/cryoSPARC plugins' form "
                                 "[R(psi) | origin]")
    return table


class _SourceSet:
    """The particle sets to read (a set, or the enabled classes) and what they share."""

    def __init__(self, groups, alignment, acquisition, pixel_size_a, dimensions):
        self.groups, self.alignment, self.acquisition = groups, alignment, acquisition
        self.pixel_size_a, self.dimensions = pixel_size_a, dimensions

    @classmethod
    def of(cls, obj, wanted):
        if not is_classes(obj):
            return cls([(None, obj)], obj.getAlignment(), obj.getAcquisition(),
                       obj.getSamplingRate(), obj.getDimensions())
        groups = [(c.getObjId(), c) for c in obj.iterItems()
                  if c.isEnabled() and (wanted is None or c.getObjId() in wanted)]
        images = obj.getImages()
        first = groups[0][1] if groups else None
        carrier = images if images is not None else first
        psize = ((images.getSamplingRate() if images is not None else None)
                 or (first.getSamplingRate() if first is not None else None))
        return cls(groups, input_alignment(obj),
                   carrier.getAcquisition() if carrier is not None else None, psize,
                   first.getDimensions() if first is not None else None)


#: Columns collected per particle by :func:`_particle_rows`.
_ROW_COLUMNS = ("scipion_id", "image_path", "image_index", "class_number", "defocus_u_a",
                "defocus_v_a", "defocus_angle_deg", "phase_shift_deg", "voltage_kv", "cs_mm",
                "amplitude_contrast", "psi_prior_deg")
#: The attribute under which the RELION plugin's import keeps a particle's psi prior.
PSI_PRIOR_ATTRIBUTE = "_rlnAnglePsiPrior"
_OPTICS_GETTERS = (("voltage_kv", "getVoltage"), ("cs_mm", "getSphericalAberration"),
                   ("amplitude_contrast", "getAmplitudeContrast"))


def _particle_rows(source_set, wanted):
    """Per-particle values (dict of lists) and the 4x4 matrices of the alignment."""
    rows = {k: [] for k in _ROW_COLUMNS}
    matrices = []
    aligned = source_set.alignment in (ALIGN_2D, ALIGN_PROJ)
    for class_id, items in source_set.groups:
        for p in items.iterItems(orderBy="id"):
            number = class_id if class_id is not None else (
                p.getClassId() if p.hasClassId() else None)
            if wanted is not None and class_id is None and number not in wanted:
                continue
            index, filename = p.getLocation()
            rows["scipion_id"].append(p.getObjId())
            rows["image_path"].append(image_file(filename))
            rows["image_index"].append(image_index(index))
            rows["class_number"].append(number)
            if aligned:
                t = p.getTransform()
                matrices.append(t.getMatrix() if t is not None else np.eye(4))
            _append_ctf(rows, p.getCTF() if p.hasCTF() else None)
            rows["psi_prior_deg"].append(psi_prior(p))
            acq = p.getAcquisition() if p.hasAcquisition() else source_set.acquisition
            for col, get in _OPTICS_GETTERS:
                value = getattr(acq, get)() if acq is not None else None
                rows[col].append(np.nan if value is None else float(value))
    return rows, matrices


def psi_prior(particle):
    """A particle's filament angle (RELION psi prior, degrees), NaN when it has none."""
    value = getattr(particle, PSI_PRIOR_ATTRIBUTE, None)
    value = value.get() if value is not None and hasattr(value, "get") else value
    return np.nan if value is None else float(value)


def has_psi_priors(obj):
    """True when the first particle of a set (or of its enabled classes) has a psi prior."""
    for items in image_sets(obj):
        for p in items.iterItems():
            return np.isfinite(psi_prior(p))
    return False


def _append_ctf(rows, ctf):
    if ctf is None or ctf.getDefocusU() is None:
        values = (np.nan,) * 4
    else:
        phase = ctf.getPhaseShift() if ctf.hasPhaseShift() else np.nan  # degrees
        values = (ctf.getDefocusU(), ctf.getDefocusV(), ctf.getDefocusAngle(), phase)
    for col, value in zip(("defocus_u_a", "defocus_v_a", "defocus_angle_deg",
                           "phase_shift_deg"), values):
        rows[col].append(value)


def _table_data(rows, source_set, matrices, form):
    """The DataFrame of the particle table; CTF and optics only where every particle has them."""
    data = pd.DataFrame({k: rows[k] for k in ("scipion_id", "image_path", "image_index")})
    data["image_index"] = data["image_index"].astype(np.int64)
    psize, dim = source_set.pixel_size_a, source_set.dimensions
    data["pixel_size_a"] = float(psize) if psize else np.nan
    data["box_px"] = np.int64(dim[0] if dim and dim[0] else 0)
    if matrices:
        for key, values in alignment_from_matrices(np.array(matrices), source_set.alignment,
                                                   form).items():
            data[key] = values
    numbers = rows["class_number"]
    if all(n is not None for n in numbers):
        data["class_number"] = np.asarray(numbers, dtype=np.int64)
    if np.isfinite(np.asarray(rows["defocus_u_a"], float)).all():
        for col in ("defocus_u_a", "defocus_v_a", "defocus_angle_deg"):
            data[col] = np.asarray(rows[col], float)
        if np.isfinite(rows["phase_shift_deg"]).all():
            data["phase_shift_deg"] = np.asarray(rows["phase_shift_deg"], float)
    for col in [c for c, _ in _OPTICS_GETTERS] + ["psi_prior_deg"]:
        values = np.asarray(rows[col], float)
        if np.isfinite(values).all():
            data[col] = values
    return data


# --------------------------------------------------------------------------
# Provenance


def plugin_protocols_upstream(pointer, max_depth=25):
    """RELION/cryoSPARC-plugin protocols that produced (or fed) a set, as the GUI names them.

    Walks the input pointers of the protocol that owns the pointed-to set,
    and of its inputs, up to ``max_depth`` protocols.  A RELION or cryoSPARC
    particle import through ``ProtImportParticles`` counts as well.  Used only
    to warn: a later protocol may have recomputed the alignment.

    Returns
    -------
    list of str
        ``'run label' (what it is)``, e.g. ``'RELION import' (a RELION import)``.
    """
    found, seen = [], set()

    def visit(ptr, depth):
        try:
            prot = ptr.getObjValue()
        except Exception:
            return
        if prot is None or depth > max_depth or not hasattr(prot, "iterInputAttributes"):
            return
        key = getattr(prot, "getObjId", lambda: id(prot))()
        if key in seen:
            return
        seen.add(key)
        what = _legacy_source(prot)
        if what:
            found.append(f"'{prot.getRunName()}' ({what})")
        try:
            inputs = list(prot.iterInputAttributes())
        except Exception:
            inputs = []
        for _, attr in inputs:
            pointers = attr if isinstance(attr, (list, tuple)) else [attr]
            for p in pointers:
                if hasattr(p, "getObjValue"):
                    visit(p, depth + 1)

    visit(pointer, 0)
    return found


#: Words for the plugins whose 2D matrices are [R(psi) | o].
_PLUGIN_WORDS = {"relion": "a RELION plugin protocol", "cryosparc2": "a cryoSPARC plugin protocol"}


def _legacy_source(prot):
    """What makes ``prot`` a source of [R(psi) | o] matrices, in words ('' if nothing)."""
    plugin = (type(prot).__module__ or "").split(".")[0]
    if plugin in LEGACY_2D_PLUGINS:
        return _PLUGIN_WORDS[plugin]
    if type(prot).__name__ == "ProtImportParticles":
        choice = getattr(prot, "importFrom", None)
        choice = choice.get() if hasattr(choice, "get") else choice
        if choice == getattr(prot, "IMPORT_FROM_RELION", -1):
            return "a particle import from RELION"
        if choice == getattr(prot, "IMPORT_FROM_CRYOSPARC", -1):
            return "a particle import from cryoSPARC"
    return ""


def legacy_form_warning(pointer, form):
    """A sentence for ``_warnings``/``_summary`` when the matrix form may be wrong, else ''."""
    if form != PWEM:
        return ""
    found = plugin_protocols_upstream(pointer)
    if not found:
        return ""
    return ("The input comes from " + ", ".join(sorted(set(found))) + ", whose 2D "
            "alignment matrices are [R(psi) | origin] (RELION's pre-2019 form), not pwem's "
            "aligned = M · raw; they are read with pwem's meaning. To apply the shifts as "
            f"RELION did, set the advanced parameter '{MATRIX_FORM_PARAM_LABEL}' (Input tab; "
            "shown with Expert Level: Advanced) to "
            f"'{MATRIX_FORM_LABELS[1]}'. Layer lines do not move; aligned images are off by "
            "R(psi)·origin − origin.")
