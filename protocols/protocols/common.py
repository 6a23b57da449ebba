"""Pieces shared by the spectools protocols (no protocol classes here)."""
import json
import os

import pyworkflow.protocol.params as params
from pyworkflow.protocol import Protocol

from ..convert import MATRIX_FORM_LABELS, MATRIX_FORMS, PWEM, legacy_form_warning


def add_matrix_form_param(form):
    """The advanced 'Alignment matrices' choice (see ``convert``)."""
    form.addParam("matrixForm", params.EnumParam, choices=list(MATRIX_FORM_LABELS), default=0,
                  expertLevel=params.LEVEL_ADVANCED, label="Alignment matrices",
                  help="How the input's 2D Transform matrices are read.\n\n"
                       "pwem (default): aligned = M · raw, as pwem defines ALIGN_2D and as "
                       "Xmipp applies it.\n\n"
                       "RELION/cryoSPARC plugins: those plugins store RELION's origin after "
                       "the rotation, M = [R(psi) | origin] (RELION's pre-2019 form). Choose "
                       "it for particles aligned by RELION or cryoSPARC through Scipion to "
                       "apply the shifts as RELION did. In power spectra the layer lines do not "
                       "move (only the mask cuts a little differently); aligned images are "
                       "off by R(psi)·origin − origin.")


def matrix_form(protocol):
    return MATRIX_FORMS[protocol.matrixForm.get()] if hasattr(protocol, "matrixForm") else PWEM


def producing_pointer(protocol, pointer):
    """A pointer whose ``getObjValue()`` is the protocol that made the pointed set."""
    value = pointer.getObjValue() if pointer is not None else None
    if value is None or isinstance(value, Protocol):
        return pointer
    try:  # a direct pointer to a set: its parent in the project is the protocol
        parent = protocol.getProject().getProtocol(value.getObjParentId())
    except Exception:
        parent = None

    class _Ptr:
        def getObjValue(self):
            return parent

    return _Ptr() if parent is not None else pointer


def provenance_warning(protocol, pointer):
    """The legacy-matrix warning for this protocol's input ('' when none applies)."""
    try:
        return legacy_form_warning(producing_pointer(protocol, pointer), matrix_form(protocol))
    except Exception:  # provenance is a courtesy; never block a run on it
        return ""


def read_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def threads(protocol):
    value = protocol.numberOfThreads.get() if hasattr(protocol, "numberOfThreads") else 1
    return max(1, int(value or 1))
