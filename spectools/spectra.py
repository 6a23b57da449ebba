"""Power spectra of aligned segments: masks, normalisation, |FFT|^2, layout, axis angle.

Pure array functions used by the averaged-power-spectrum pipeline.  Frames
and axes follow ``conventions/model.md``; spectra use the same ``(x, y)``
orientation as images (``kx`` along columns, ``ky`` along rows), so a
filament along x in real space has its layer lines parallel to ky, i.e.
vertical in the spectrum.

Normalisation: with ``normalize=True`` each segment is scaled to zero mean
and unit variance inside its mask, and the spectrum of a segment is
``|DFT(m x)|^2 / sum(m^2)`` (unnormalised DFT).  By Parseval the mean of such
a spectrum over all frequencies is 1, so white noise gives a flat spectrum of
1 whatever the box, mask or padding.  With ``normalize=False`` nothing is
scaled and the spectrum is ``|DFT(x) / N^2|^2`` (N = unpadded box), which
is what ``relion_image_handler --avg_ampl2_ali`` accumulates.
"""
import numpy as np
import scipy.fft
from scipy import ndimage

MASKS = ("tube", "circle", "none")


def soft_step(distance, edge):
    """1 for ``distance <= 0``, 0 for ``distance >= edge``, a raised cosine between."""
    if edge <= 0:
        return (distance <= 0).astype(np.float32)
    t = np.clip(distance / edge, 0.0, 1.0)
    return (0.5 + 0.5 * np.cos(np.pi * t)).astype(np.float32)


def segment_mask(box, kind="tube", *, diameter_px=None, axis_angle_deg=0.0, edge_px=None,
                 margin_px=2.0, coords=None):
    """Soft mask in the aligned (class) frame.

    Parameters
    ----------
    box : int
    kind : {"tube", "circle", "none"}
        ``tube``: a band ``diameter_px`` wide along the helical axis (at
        ``axis_angle_deg`` from +x towards +y), with raised-cosine edges,
        limited to a disk that ends ``margin_px`` inside the box with a
        raised-cosine taper (so the box ends, and the corners that rotation
        uncovers, never reach the spectrum); ``circle``: that disk alone;
        ``none``: ones.
    diameter_px : float
        Tube diameter in pixels (required for ``tube``).
    edge_px : float, optional
        Width of the raised-cosine edges; default 10% of the box, at least 4.
    margin_px : float
        Distance kept between the mask and the box edge (use at least the
        largest shift in the data).
    coords : (ndarray, ndarray), optional
        Evaluate the mask at these ``(x, y)`` positions (relative to the box
        centre) instead of on the box's pixel grid.

    Returns
    -------
    numpy.ndarray, float32, (box, box) or the shape of ``coords``
    """
    if coords is None:
        c = box // 2
        y, x = np.mgrid[:box, :box].astype(np.float64) - c
    else:
        x, y = (np.asarray(v, np.float64) for v in coords)
    if kind == "none":
        return np.ones(x.shape, np.float32)
    edge = max(4.0, 0.1 * box) if edge_px is None else float(edge_px)
    radius = np.hypot(x, y)
    outer = box / 2.0 - margin_px
    disk = soft_step(radius - (outer - edge), edge)
    if kind == "circle":
        return disk
    if kind != "tube":
        raise ValueError(f"mask must be one of {MASKS}")
    if not diameter_px or diameter_px <= 0:
        raise ValueError("a tube mask needs a positive diameter")
    t = np.deg2rad(axis_angle_deg)
    across = np.abs(-np.sin(t) * x + np.cos(t) * y)    # distance from the axis
    band = soft_step(across - diameter_px / 2.0, edge / 2.0)
    return band * disk


def normalize_in_mask(images, mask):
    """``(x - mean) / std`` with mean and std weighted by ``mask``, then times ``mask``.

    ``mask`` is one ``(N, N)`` mask for all images or one per image ``(B, N, N)``.
    """
    w = np.broadcast_to(mask, images.shape)
    wsum = w.sum(axis=(1, 2), dtype=np.float64)
    mean = np.einsum("bij,bij->b", images, w, dtype=np.float64) / wsum
    centred = images - mean[:, None, None].astype(np.float32)
    var = np.einsum("bij,bij,bij->b", centred, centred, w, dtype=np.float64) / wsum
    scale = 1.0 / np.sqrt(np.where(var > 0, var, 1.0))
    return centred * (w * scale[:, None, None].astype(np.float32))


def power_spectra_sum(images, pad=2, rows=None, workers=1):
    """Sum over images of ``|DFT|^2`` on the zero-padded grid, as a half plane.

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
    """
    n = images.shape[-1]
    size = pad * n
    if rows is not None:
        images = images[:, rows, :]
    # rfft along x, then a full FFT along y, both zero padded to ``size``.  Where
    # the rows sit in the padded frame only changes phases, not |DFT|^2, so
    # the data rows can simply come first.
    half = scipy.fft.rfft(images, n=size, axis=-1, workers=workers)
    spectrum = scipy.fft.fft(half, n=size, axis=-2, workers=workers, overwrite_x=True)
    power = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    return power.sum(axis=0).astype(np.float64)


def ctf_power_sum(size, pixel_size_a, params, angles_deg):
    """Sum of CTF^2 over segments on the half-plane grid of a ``size`` transform.

    Parameters
    ----------
    size : int
        Padded transform size; the grid spacing is ``1 / (size * pixel_size_a)``.
    params : pandas.DataFrame
        Rows with ``defocus_u_a``, ``defocus_v_a``, ``voltage_kv``, ``cs_mm``,
        ``amplitude_contrast`` and optionally ``phase_shift_deg``.
    angles_deg : array_like
        Astigmatism angle of each segment in the frame of its spectrum.
    """
    from .ctf import ctf_2d

    total = np.zeros((size, size // 2 + 1))
    phase = params["phase_shift_deg"].to_numpy(float) if "phase_shift_deg" in params else \
        np.zeros(len(params))
    for row, angle, shift in zip(params.itertuples(index=False), angles_deg, phase):
        total += ctf_2d((size, size), pixel_size_a, row.defocus_u_a, row.defocus_v_a, angle,
                        row.voltage_kv, row.cs_mm, row.amplitude_contrast, shift) ** 2
    return total


def full_plane(half, size):
    """Centred full plane (``numpy.fft.fftshift`` layout) from an rfft2 half plane.

    Zero frequency lands at index ``size // 2`` along both axes; the missing
    half follows from Friedel symmetry ``P(-k) = P(k)``.
    """
    full = np.empty((size, size), np.float64)
    w = half.shape[-1]
    full[:, :w] = half
    # columns w.. hold kx = -(size - col); P(ky, kx) = P(-ky, -kx)
    cols = np.arange(w, size)
    neg_rows = (-np.arange(size)) % size
    full[:, w:] = half[neg_rows][:, size - cols]
    return np.fft.fftshift(full)


def half_plane(full_centred):
    """Inverse of :func:`full_plane`: the rfft2 half plane (origin at [0, 0])."""
    size = full_centred.shape[-1]
    return np.fft.ifftshift(full_centred)[:, :size // 2 + 1]


def rotate90_centred(spectrum, turn_deg):
    """Exact turn of a centred spectrum by a multiple of 90 degrees about ``size // 2``."""
    from .transform import rotate90
    return rotate90(spectrum[None], int(round(turn_deg / 90.0)) % 4)[0]


def axis_angle_from_image(image, coarse_deg=1.0, fine_deg=0.05):
    """Angle of a filament's axis in an image (degrees from +x towards +y, in [-90, 90)).

    The image (a class average, or the mean of aligned segments) is masked
    with a soft disk and projected along every direction; summing along the
    axis gives the filament's lateral density profile, which is far more
    peaked than any other projection, so the axis is the direction whose
    projection has the largest variance.  Searched every ``coarse_deg``,
    then refined every ``fine_deg`` around the best.

    Why not the spectrum: the equator of a thin helix is strong only within a
    few Fourier pixels of the origin (J0 of the helix radius), where the
    mask's own transform lies, and the X of the first layer lines outshines
    it (a simulated 45 Å-radius helix: the strongest line through the origin
    lies at 57-60 degrees from the equator).  The real-space projection has
    no such trap.
    """
    image = np.asarray(image, np.float64)
    box = image.shape[-1]
    c = box // 2
    disk = segment_mask(box, "circle", margin_px=1.0).astype(np.float64)
    weighted = (image - np.sum(image * disk) / disk.sum()) * disk
    grid = np.arange(-c, box - c, 1.0)
    along, across = np.meshgrid(grid, grid)          # rows: across, columns: along

    def score(angle):
        t = np.deg2rad(angle)
        x = np.cos(t) * along - np.sin(t) * across
        y = np.sin(t) * along + np.cos(t) * across
        values = ndimage.map_coordinates(weighted, [y + c, x + c], order=1, cval=0.0)
        return float(np.sum(values.sum(axis=1) ** 2))

    coarse = np.arange(-90.0, 90.0, coarse_deg)
    best = coarse[int(np.argmax([score(a) for a in coarse]))]
    fine = np.arange(best - coarse_deg, best + coarse_deg + fine_deg / 2, fine_deg)
    angle = fine[int(np.argmax([score(a) for a in fine]))]
    return float((angle + 90.0) % 180.0 - 90.0)
