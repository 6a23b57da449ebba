"""cryoSPARC ``.cs`` files: numpy structured arrays.

cryoSPARC writes a dataset as a plain ``.npy`` file (magic ``\\x93NUMPY``)
holding one structured array with a field per column (``uid``,
``blob/path``, ``alignments2D/pose``, ...).  Strings are fixed-width bytes;
vector columns (``blob/shape``, ``alignments2D/shift``) are subarray fields.
Newer cryosparc-tools can also write a compressed stream (magic
``\\x95CSDAT``) that numpy cannot read.
"""
import numpy as np

from ..errors import SpectoolsError
from .atomic import atomic_output
from .files import regular_file

#: Large datasets have long dtype descriptions; numpy >= 1.24 refuses headers
#: over 10 000 bytes unless told otherwise (pyem uses 100 000 too).
MAX_HEADER_SIZE = 1_000_000


def load_cs(path):
    """Load a ``.cs`` file as a structured array.

    Raises
    ------
    SpectoolsError
        For the compressed CSDAT variant, truncated or corrupted files, and
        arrays that are not one-dimensional structured arrays.
    """
    regular_file(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
            if magic == b"\x95CSDAT":
                raise SpectoolsError(
                    "is a compressed cryoSPARC dataset (CSDAT), which spectools cannot read; "
                    "re-save it as numpy with cryosparc-tools (Dataset.save(path, "
                    "format=NUMPY_FORMAT))", path)
            if magic != b"\x93NUMPY":
                raise SpectoolsError("is not a cryoSPARC .cs file (no numpy header)", path)
            fh.seek(0)
            array = np.load(fh, allow_pickle=False, max_header_size=MAX_HEADER_SIZE)
    except SpectoolsError:
        raise
    except OSError as exc:
        raise SpectoolsError(f"cannot read: {exc.strerror or exc}", path) from None
    except Exception as exc:  # numpy raises ValueError/EOFError/... for damaged files
        raise SpectoolsError(f"truncated or corrupted .cs file ({str(exc).splitlines()[0]})",
                             path) from None
    if array.dtype.names is None or array.ndim != 1:
        raise SpectoolsError("is not a cryoSPARC dataset (not a 1-D structured array)", path)
    return array


def cs_field_names(path):
    """The field names of a plain ``.cs`` file, from its header alone.

    Returns None when the header cannot be read this way (compressed or
    damaged files; :func:`load_cs` then says what is wrong).
    """
    regular_file(path)  # never open a FIFO or device
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    try:
        with open(path, "rb") as fh:
            reader = readers[np.lib.format.read_magic(fh)]
            _, _, dtype = reader(fh, max_header_size=MAX_HEADER_SIZE)
    except Exception:  # not a plain numpy file, or a damaged one
        return None
    return dtype.names


def save_cs(path, array):
    """Write a structured array as a ``.cs`` file, atomically.

    ``np.save`` would append ``.npy`` to a file name; writing through an open
    handle keeps the ``.cs`` name.
    """
    with atomic_output(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
