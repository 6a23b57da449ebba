"""Sums of power spectra on a zero-padded grid: segments' ``|DFT|^2`` and the CTF's ``CTF^2``.

Normalisation (``conventions/spectra.md``): a segment normalised to zero mean and
unit variance inside its mask ``m`` contributes ``|DFT(m x)|^2 / sum(m^2)``, so white
noise gives a flat spectrum of 1 whatever the box, mask or padding; without
normalisation the spectrum is ``|DFT(x) / N^2|^2``, what ``relion_image_handler
--avg_ampl2_ali`` accumulates.
"""
import json
import os
import platform
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import scipy.fft


def _import_pyfftw():
    """pyFFTW without the interfaces its package import loads, or None when not installed.

    ``import pyfftw`` imports ``pyfftw.interfaces``, which imports
    ``dask.array`` (when Dask is installed) and ``scipy.fftpack`` to wrap them:
    0.35 s of every command's start-up here, for interfaces spectools never
    uses (it calls ``pyfftw.FFTW`` only).  Those two modules are hidden while
    pyFFTW is imported, and only then; ``import pyfftw.interfaces.dask_fft``
    still works afterwards.
    """
    hidden = [name for name in ("dask.array.fft", "scipy.fftpack") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # makes "import name" raise ImportError
    try:
        import pyfftw
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    finally:
        for name in hidden:
            if sys.modules.get(name, "") is None:
                del sys.modules[name]
    return pyfftw


# FFTW, when installed (pip install spectools[fftw]); pocketfft otherwise.
pyfftw = _import_pyfftw()

#: The FFT library of the spectrum step: "fftw" (pyFFTW) when it is installed,
#: else "pocketfft" (scipy.fft); SPECTOOLS_FFT=pocketfft forces the latter.
FFT_BACKEND = ("fftw" if pyfftw is not None and os.environ.get("SPECTOOLS_FFT") != "pocketfft"
               else "pocketfft")
_PLANS = threading.local()
_PLANNING = threading.Lock()
_WISDOM = {"loaded": False}


def power_spectra_sum(images, pad=2, rows=None):
    """Sum over images of ``|DFT|^2`` on the zero-padded grid, as a half plane.

    Each image is transformed on the calling thread, so that worker threads
    run whole batches side by side.

    Parameters
    ----------
    images : ndarray, (B, N, N) float32
    pad : int
        Padded size ``pad * N``.
    rows : slice, optional
        Rows known to hold all nonzero pixels (e.g. a horizontal tube mask):
        the row transforms skip the others.

    Returns
    -------
    ndarray, float64, (pad*N, pad*N//2 + 1)
        Unnormalised, origin at [0, 0] (FFT layout).

    Notes
    -----
    An rfft along x, then a full FFT along y, both zero padded to the padded
    size; where the rows sit in the padded frame only changes phases, not
    ``|DFT|^2``, so the data rows simply come first.  One image at a time:
    its transform (1 MB at 256 px, pad 2) stays in the processor's cache,
    which made it 1.7-2.2x faster than transforming the batch at once.  With
    FFTW each thread keeps its plans (FFTW_MEASURE, planned once per shape;
    the planner's wisdom is kept on disk, :func:`wisdom_path`, so that later
    runs do not measure again).
    """
    from .kernels import accumulate_power

    n = images.shape[-1]
    size = pad * n
    if rows is not None:
        images = images[:, rows, :]
    transform = _padded_transform(images.shape[1], n, size)
    total = np.zeros((size, size // 2 + 1), np.float64)
    for image in images:
        accumulate_power(transform(image)[None], total)
    return total


def _padded_transform(n_rows, n, size):
    """A function image (n_rows, n) -> its (size, size//2 + 1) padded DFT, for this thread."""
    if FFT_BACKEND != "fftw":
        def transform(image):
            half = scipy.fft.rfft(image, n=size, axis=-1)
            return scipy.fft.fft(half, n=size, axis=0, overwrite_x=True)
        return transform
    plans = getattr(_PLANS, "plans", None)
    if plans is None:
        plans = _PLANS.plans = {}
    key = (n_rows, n, size)
    if key not in plans:
        with _PLANNING:           # FFTW's planner is not thread-safe
            _load_wisdom()
            known = pyfftw.export_wisdom()
            # Whole unpadded images: one 2D r2c plan (0.21 ms at 256 px here,
            # pocketfft 0.30 ms, FFTW by rows then columns 0.25 ms).
            plans[key] = _FftwWhole(n) if n_rows == n == size else _FftwPadded(n_rows, n, size)
            if pyfftw.export_wisdom() != known:
                _save_wisdom()
    return plans[key]


class _FftwWhole:
    """FFTW's 2D r2c plan and aligned buffers for whole unpadded images (one thread's)."""

    def __init__(self, n):
        self.image = pyfftw.empty_aligned((n, n), np.float32)
        self.spectrum = pyfftw.empty_aligned((n, n // 2 + 1), np.complex64)
        self.plan = pyfftw.FFTW(self.image, self.spectrum, axes=(0, 1), flags=("FFTW_MEASURE",))

    def __call__(self, image):
        """The transform of ``image``: a view of this plan's output buffer."""
        self.image[:] = image
        self.plan()
        return self.spectrum


class _FftwPadded:
    """FFTW plans and aligned buffers for one padded shape (one thread's)."""

    def __init__(self, n_rows, n, size):
        width = size // 2 + 1
        self.n_rows, self.n = n_rows, n
        self.rows_in = pyfftw.zeros_aligned((n_rows, size), np.float32)
        self.rows_out = pyfftw.empty_aligned((n_rows, width), np.complex64)
        self.columns_in = pyfftw.zeros_aligned((size, width), np.complex64)
        self.columns_out = pyfftw.empty_aligned((size, width), np.complex64)
        # Out-of-place r2c and c2c plans keep their input (FFTW's default), so
        # the zero padding of both input buffers stays zero between images.
        flags = ("FFTW_MEASURE",)
        self.along_x = pyfftw.FFTW(self.rows_in, self.rows_out, axes=(1,), flags=flags)
        self.along_y = pyfftw.FFTW(self.columns_in, self.columns_out, axes=(0,), flags=flags)
        # Measuring may write into the input buffers (FFTW's manual, "Planner Flags").
        self.rows_in[:] = 0
        self.columns_in[:] = 0

    def __call__(self, image):
        """The padded transform of ``image``: a view of this plan's output buffer."""
        self.rows_in[:, :self.n] = image
        self.along_x()
        self.columns_in[:self.n_rows] = self.rows_out
        self.along_y()
        return self.columns_out


def wisdom_path():
    """Where FFTW's wisdom (its measured plans) is kept between runs, or None.

    ``SPECTOOLS_CACHE_DIR``, else ``$XDG_CACHE_HOME/spectools``, else
    ``~/.cache/spectools``; ``SPECTOOLS_CACHE_DIR=none`` keeps nothing.  The
    file is named after the host and processor type, since wisdom is only
    valid on the machine that measured it (a shared home folder on a cluster
    gets one file per node).
    """
    folder = os.environ.get("SPECTOOLS_CACHE_DIR")
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        folder = Path(base) / "spectools"
    elif folder.lower() == "none" or not folder:
        return None
    name = f"fftw-wisdom-{platform.node() or 'host'}-{platform.machine()}.json"
    return Path(folder) / name


def _load_wisdom():
    """Import the wisdom kept on disk, once per process; a missing or bad file is ignored."""
    if _WISDOM["loaded"]:
        return
    _WISDOM["loaded"] = True
    path = wisdom_path()
    if path is None:
        return
    try:
        kept = json.loads(path.read_text())
        pyfftw.import_wisdom(tuple(w.encode() for w in kept))
    except (OSError, ValueError, TypeError, AttributeError):
        pass


def _save_wisdom():
    """Write this process's wisdom (replacing the file at once); failures are ignored."""
    path = wisdom_path()
    if path is None:
        return
    text = json.dumps([w.decode() for w in pyfftw.export_wisdom()])
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".wisdom-",
                                         delete=False) as tmp:
            tmp.write(text)
        os.replace(tmp.name, path)
    except OSError:
        if tmp is not None:
            Path(tmp.name).unlink(missing_ok=True)


def ctf_power_sum(size, pixel_size_a, ctfs, angles_deg):
    """Sum of CTF^2 over segments on the half-plane grid of a ``size`` transform.

    Parameters
    ----------
    size : int
        Padded transform size; the grid spacing is ``1 / (size * pixel_size_a)``.
    pixel_size_a : float
    ctfs : iterable of spectools.ops.ctf.CTF
        One CTF per segment (its own astigmatism angle is ignored).
    angles_deg : array_like
        Astigmatism angle of each segment in the frame of its spectrum.
    """
    total = np.zeros((size, size // 2 + 1))
    for ctf, angle in zip(ctfs, angles_deg):
        total += ctf.turned(angle).values((size, size), pixel_size_a) ** 2
    return total
