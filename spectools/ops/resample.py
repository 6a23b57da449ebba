"""Imposing 2D alignments on images: pure array functions.

Every function follows the model's convention (``conventions/model.md``): a
feature at ``p`` in a raw image lands at ``q = F^m R(psi) (p + o)`` in the
aligned image, with pixel coordinates ``x = col - N//2``, ``y = row - N//2``.
Each output pixel is resampled once, with one of three kernels:

``sinc`` (default)
    A rotation by a multiple of 90 degrees (an exact index permutation), then
    the residual angle (at most 45 degrees) as three shears (Paeth's
    decomposition ``R = Sx Sy Sx``), each a sub-pixel shift of whole lines by
    a :data:`SINC_TAPS`-tap Kaiser-windowed sinc (one set of taps per line,
    so the shifts are cheap vector loops, :mod:`.kernels`).  Lines continue
    beyond the box with their end values.  The shift rides on the last two
    shears, the mirror is an exact index flip.  Frequency response of one
    shift, averaged over sub-pixel positions, within 0.1% of 1 up to 0.4
    cycles/pixel (80% of Nyquist); see ``conventions/spectra.md`` for the
    measured error bounds.
``fourier``
    The same three shears, each an exact phase ramp on a zero-padded 1D FFT:
    exact for band-limited images, several times slower.  Rows are zero
    padded so that nothing wraps into the output; the image mean is removed
    first so the padding does not make an edge.
``cubic``
    Cubic B-spline with prefilter (``scipy.ndimage``), as Xmipp does.
``linear``
    Bilinear, zero outside, in one compiled pass (:mod:`.kernels`): what
    ``relion_stack_create --apply_transformation`` and ``relion_image_handler
    --avg_ampl2_ali`` do.  The fastest kernel, but it loses power at high
    frequency (42% of it kept at 0.35-0.40 cycles/pixel, see
    ``conventions/spectra.md``).

Output pixels whose source lies outside the raw box (the corners that a
rotation uncovers) are set by ``fill``: ``zero``, the image ``mean``, or
``noise`` with the image's mean and standard deviation.
"""
import numpy as np
import scipy.fft
from scipy import ndimage

from .geometry import inverse_affine_matrix

INTERPOLATIONS = ("sinc", "fourier", "cubic", "linear")
#: Taps of the windowed sinc of the ``sinc`` kernel, and the Kaiser window's beta.
SINC_TAPS = 20
SINC_BETA = 6.0
#: Sub-pixel positions at which the taps are tabulated (linear in between).
SINC_STEPS = 1024
#: Images sheared together (small groups stay in cache and share similar padding).
SHEAR_GROUP = 4
#: Rows whose phase ramps are built from one exact ramp and a cumulative product.
_RAMP_BLOCK = 64
FILLS = ("zero", "mean", "noise")


def align_images(images, psi_deg, origin_x_px, origin_y_px, mirror=False, *,
                 interpolation="sinc", fill="zero", turn_deg=0, rng=None, workers=1):
    """Bring raw images into their aligned frame.

    Parameters
    ----------
    images : array_like, shape (B, N, N) or (N, N)
        Raw images, ``img[row, col]``.
    psi_deg, origin_x_px, origin_y_px : float or array_like, shape (B,)
        Alignment in the model's convention; origins in pixels.
    mirror : bool or array_like of bool
        Negate x after rotation (SPIDER/Xmipp mirror).
    interpolation : {"sinc", "fourier", "cubic", "linear"}
    fill : {"zero", "mean", "noise"}
        Value of output pixels whose source is outside the raw box.
    turn_deg : {0, 90, -90, 180}
        An extra exact turn after the alignment, ``q' = R(turn) q`` (90 puts
        RELION's horizontal helical axis vertical).
    rng : numpy.random.Generator, optional
        For ``fill="noise"``.
    workers : int
        Threads for the FFTs of ``fourier``.

    Returns
    -------
    numpy.ndarray, float32, same shape as ``images``
    """
    images = np.asarray(images)
    single = images.ndim == 2
    batch = np.asarray(images[None] if single else images, dtype=np.float32)
    n_images, ny, nx = batch.shape
    if ny != nx:
        raise ValueError(f"images must be square, got {ny}x{nx}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}")
    if turn_deg % 90:
        raise ValueError("turn_deg must be a multiple of 90")
    psi, ox, oy, mirror = (np.broadcast_to(np.asarray(v, dt), (n_images,)) for v, dt in (
        (psi_deg, float), (origin_x_px, float), (origin_y_px, float), (mirror, bool)))

    # R(turn) F^m R(psi) = F^m R(psi +- turn): the turn joins the rotation.
    angle = psi + np.where(mirror, -1.0, 1.0) * turn_deg
    first, last = inside_columns(nx, angle, ox, oy, mirror)
    if interpolation == "sinc":
        out = _sinc_align(batch, angle, ox, oy, mirror)
    elif interpolation == "fourier":
        out = _fourier_align(batch, angle, ox, oy, mirror, workers)
    elif interpolation == "linear":
        out = _linear_align(batch, angle, ox, oy, mirror, first, last)
    else:
        out = np.empty_like(batch)
        inverse = inverse_affine_matrix(angle, ox, oy, mirror)
        for i in range(n_images):
            matrix, offset = ndimage_parameters(inverse[i], nx)
            # "nearest" only decides sources a rounding error outside the box;
            # _fill_outside then applies RELION's rule (inside [0, N-1] +- 1e-6).
            out[i] = ndimage.affine_transform(batch[i], matrix, offset=offset, order=3,
                                              mode="nearest", prefilter=True)
    if interpolation != "linear" or fill != "zero":   # the linear kernel writes the zeros
        _fill_outside(out, batch, first, last, fill, rng)
    return out[0] if single else out


def source_inside(shape, psi_deg, origin_x_px, origin_y_px, mirror=False):
    """Mask of output pixels whose source ``p`` lies within the raw box ``[0, N-1]``.

    Returns
    -------
    numpy.ndarray of bool, shape (B, N, N)
    """
    n = shape[-1]
    first, last = inside_columns(n, psi_deg, origin_x_px, origin_y_px, mirror)
    col = np.arange(n)[None, None, :]
    return (col >= first[:, :, None]) & (col <= last[:, :, None])


def inside_columns(n, psi_deg, origin_x_px, origin_y_px, mirror=False):
    """First and last column of each output row whose source lies in the raw box.

    For each output row the source is linear in x, so the columns whose
    source stays inside ``[0, N-1]`` (± 1e-6, RELION's rule) form one run.

    Returns
    -------
    first, last : numpy.ndarray of int64, shape (B, N)
        Inclusive; ``first > last`` for a row with no such column.
    """
    c = n // 2
    inv = inverse_affine_matrix(psi_deg, origin_x_px, origin_y_px, mirror).reshape(-1, 3, 3)
    y = (np.arange(n) - c)[None, :]
    x_lo = np.full((len(inv), n), -np.inf)
    x_hi = np.full((len(inv), n), np.inf)
    eps = 1e-6
    for k in range(2):
        slope = inv[:, k, 0][:, None]
        base = inv[:, k, 1][:, None] * y + inv[:, k, 2][:, None]
        lower, upper = -c - eps - base, n - 1 - c + eps - base   # slope*x in [lower, upper]
        with np.errstate(divide="ignore", invalid="ignore"):
            a, b = lower / slope, upper / slope
        flat = np.abs(slope) < 1e-12
        lo = np.where(flat, np.where((lower <= 0) & (upper >= 0), -np.inf, np.inf),
                      np.minimum(a, b))
        hi = np.where(flat, np.where((lower <= 0) & (upper >= 0), np.inf, -np.inf),
                      np.maximum(a, b))
        x_lo, x_hi = np.maximum(x_lo, lo), np.minimum(x_hi, hi)
    first = np.clip(np.ceil(x_lo) + c, 0, n).astype(np.int64)
    last = np.clip(np.floor(x_hi) + c, -1, n - 1).astype(np.int64)
    return first, last


def ndimage_parameters(inverse, n):
    """``(matrix, offset)`` for ``scipy.ndimage.affine_transform`` from an aligned -> raw matrix.

    ``affine_transform`` maps output index ``(row, col)`` to input index
    ``matrix @ (row, col) + offset``; the model's matrices act on ``(x, y)``
    relative to the centre ``N//2``.
    """
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])
    linear = swap @ inverse[:2, :2] @ swap
    centre = np.full(2, n // 2, dtype=float)
    offset = centre - linear @ centre + swap @ inverse[:2, 2]
    return linear, offset


# --------------------------------------------------------------------------
# Three-shear resampling: windowed sinc and Fourier


def sinc_taps(taps=None, beta=None, steps=None):
    """The ``sinc`` kernel's taps, tabulated at ``steps + 1`` sub-pixel positions.

    Row ``i`` interpolates at ``f = i / steps`` between samples: tap ``j``
    weighs sample ``j - taps/2 + 1``, ``h = sinc(f - k) I0(beta sqrt(1 -
    ((f - k) / (taps/2))^2)) / I0(beta)``, normalised to sum 1 (constants
    are kept exactly).

    Returns
    -------
    numpy.ndarray, float32, (steps + 1, taps)
    """
    taps = SINC_TAPS if taps is None else int(taps)
    beta = SINC_BETA if beta is None else float(beta)
    steps = SINC_STEPS if steps is None else int(steps)
    half = taps // 2
    f = np.arange(steps + 1)[:, None] / steps
    x = f - np.arange(-half + 1, half + 1)[None, :]
    h = np.sinc(x) * np.i0(beta * np.sqrt(np.clip(1.0 - (x / half) ** 2, 0.0, None)))
    return (h / h.sum(axis=1, keepdims=True)).astype(np.float32)


_SINC_TABLE = sinc_taps()


def _sinc_align(batch, angle, ox, oy, mirror):
    """``q = F^m (R(angle) p + t)``, ``t = R(angle) o``, by three windowed-sinc shears."""
    from .kernels import sinc_rotate

    turns = np.round(angle / 90.0).astype(np.int64)
    residual = angle - 90.0 * turns
    t = np.deg2rad(angle)
    tx = np.cos(t) * ox - np.sin(t) * oy
    ty = np.sin(t) * ox + np.cos(t) * oy
    out = np.empty_like(batch)
    sinc_rotate(np.ascontiguousarray(batch), turns, np.ascontiguousarray(residual, np.float64),
                np.ascontiguousarray(tx, np.float64), np.ascontiguousarray(ty, np.float64),
                np.ascontiguousarray(mirror, np.bool_), _SINC_TABLE, out)
    return out


def _linear_align(batch, angle, ox, oy, mirror, first, last):
    """``q = F^m R(angle) (p + o)``, bilinear in one compiled pass (RELION's kernel).

    ``first``, ``last``: the columns of each row whose source is in the box.
    """
    from .kernels import bilinear_affine

    out = np.empty_like(batch)
    bilinear_affine(np.ascontiguousarray(batch), inverse_affine_matrix(angle, ox, oy, mirror),
                    first, last, out)
    return out


def _fourier_align(batch, angle, ox, oy, mirror, workers):
    """``q = F^m (R(angle) p + t)`` with ``t = R(angle) o`` for every image."""
    turns = np.round(angle / 90.0).astype(int)
    residual = angle - 90.0 * turns
    t = np.deg2rad(angle)
    tx = np.cos(t) * ox - np.sin(t) * oy
    ty = np.sin(t) * ox + np.cos(t) * oy

    means = batch.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)
    work = batch - means[:, None, None]
    for k in range(1, 4):
        picked = (turns % 4) == k
        if picked.any():
            work[picked] = rotate90(work[picked], k)
    # The padding a shear needs grows with the angle and is set by the largest
    # angle of the images sheared together: group images of similar angle.
    out = np.empty_like(work)
    order = np.argsort(np.abs(residual), kind="stable")
    for group in np.array_split(order, max(1, len(order) // SHEAR_GROUP)):
        out[group] = _three_shear(work[group], residual[group], tx[group], ty[group], workers)
    if mirror.any():
        out[mirror] = _flip_x(out[mirror])
    out += means[:, None, None]
    return out


def rotate90(images, k=1):
    """Exact turn by ``k * 90`` degrees about the centre ``N//2``: ``q = R(90 k) p``.

    For even ``N`` the centre is not the array's middle, so this is
    ``numpy.rot90`` plus a one-pixel roll; the column that wraps around (its
    source is just outside the box) is a periodic copy, as everywhere in the
    Fourier method.
    """
    out = np.asarray(images)
    for _ in range(k % 4):
        # R(90): new[r', c'] = old[(2c - c') mod N, r']
        out = np.swapaxes(_reverse_about_centre(out, axis=-2), -1, -2)
    return np.ascontiguousarray(out)


def _reverse_about_centre(images, axis):
    """``out[i] = in[(2c - i) mod N]`` along ``axis`` (c = N//2): x -> -x."""
    n = images.shape[axis]
    return np.roll(np.flip(images, axis=axis), 2 * (n // 2) - (n - 1), axis=axis)


def _flip_x(images):
    return np.ascontiguousarray(_reverse_about_centre(images, axis=-1))


def _three_shear(images, angle_deg, tx, ty, workers):
    """Rotate by ``angle`` (|angle| <= 45) and translate by ``(tx, ty)``: ``q = R p + t``.

    ``R(a) = Sx(alpha) Sy(beta) Sx(alpha)`` with ``Sx(alpha) = [[1, alpha], [0, 1]]``,
    ``Sy(beta) = [[1, 0], [beta, 1]]``, ``alpha = -tan(a/2)``, ``beta = sin(a)``.
    ``ty`` joins the y-shear, ``tx - alpha ty`` the last x-shear.
    """
    n = images.shape[-1]
    c = n // 2
    a = np.deg2rad(angle_deg)
    alpha, beta = -np.tan(a / 2.0), np.sin(a)
    tx3 = tx - alpha * ty

    # Pass 3 (last x-shear) reads columns x - s3(y) of the intermediate image,
    # s3(y) = alpha y + tx3 for rows y in [-c, n - c); passes 1 and 2 are
    # computed on just that column window [lo, hi).
    s3_ends = np.concatenate([alpha * -c + tx3, alpha * (n - 1 - c) + tx3])
    lo = int(np.floor(-c - s3_ends.max())) - 1
    hi = int(np.ceil(n - c - s3_ends.min())) + 1

    # Pass 1: x-shear of the raw rows into the window.
    img = _shift_lines(images, alpha, np.zeros_like(alpha), in_origin=c, out_len=hi - lo,
                       out_origin=-lo, line_origin=c, workers=workers)
    # Pass 2: y-shear of the window's columns (as rows of the transposed view),
    # keeping the box's rows.
    img = _shift_lines(np.swapaxes(img, -1, -2), beta, ty, in_origin=c, out_len=n,
                       out_origin=c, line_origin=-lo, workers=workers)
    img = np.swapaxes(img, -1, -2)
    # Pass 3: x-shear back into the box, with the remaining x translation.
    return _shift_lines(img, alpha, tx3, in_origin=-lo, out_len=n, out_origin=c,
                        line_origin=c, workers=workers)


def _shift_lines(images, slope, intercept, in_origin, out_len, out_origin, line_origin, workers):
    """Shift every row of every image by a sub-pixel amount.

    Row ``j`` (coordinate ``u = j - line_origin``) of image ``b`` is shifted by
    ``s = slope[b] u + intercept[b]``: samples at ``x = l - in_origin`` become
    ``out(x') = in(x' - s)`` at ``x' = l' - out_origin``, ``l' < out_len``.  The
    shift is a phase ramp on a zero-padded real FFT, long enough that shifted
    data never wrap into the output.
    """
    n_lines, length = images.shape[-2:]
    u = np.arange(n_lines) - line_origin
    offset = out_origin - in_origin
    d_ends = np.concatenate([slope * u[0], slope * u[-1]]) + np.tile(intercept, 2) + offset
    need = max(length + max(float(d_ends.max()), 0.0),
               out_len - min(float(d_ends.min()), 0.0)) + 2
    size = scipy.fft.next_fast_len(int(np.ceil(need)), real=True)
    spectrum = scipy.fft.rfft(_smooth_pad(images, size), axis=-1, workers=workers)
    freq = np.arange(size // 2 + 1) / size
    # exp(-2 pi i f d) for d = slope u + intercept + offset: exact at the first
    # row of each block of rows, times powers of the per-row step inside the
    # block (one complex product per sample instead of a cos and a sin; the
    # powers come from a cumulative product over at most BLOCK rows, so
    # rounding stays ~1e-6).
    block = min(_RAMP_BLOCK, n_lines)
    powers = np.empty((len(images), block, len(freq)), np.complex64)
    powers[:, 0] = 1.0
    powers[:, 1:] = np.exp(-2j * np.pi * np.outer(slope, freq)).astype(np.complex64)[:, None]
    np.cumprod(powers, axis=1, out=powers)
    for j0 in range(0, n_lines, block):
        rows = min(block, n_lines - j0)
        d = slope * u[j0] + intercept + offset
        first = np.exp(-2j * np.pi * np.outer(d, freq)).astype(np.complex64)
        spectrum[:, j0:j0 + rows] *= first[:, None, :] * powers[:, :rows]
    if size % 2 == 0:
        # The Nyquist term of a real signal cannot carry a sub-pixel shift; drop it.
        spectrum[..., -1] = 0
    out = scipy.fft.irfft(spectrum, n=size, axis=-1, workers=workers, overwrite_x=True)
    return out[..., :out_len]


def _smooth_pad(rows, size):
    """Pad rows to ``size`` with a raised-cosine blend from the last value back to the first.

    The FFT treats each row as periodic; a jump between a row's ends would
    ring (Gibbs) into the image when the row is shifted by a fraction of a
    pixel.  Blending smoothly across the padding removes the jump (measured on
    simulated segments: relative RMS error 1.6e-3 against 2.5e-3 with zero
    padding; mirroring the ends did worse, 4.7e-3).
    """
    length = rows.shape[-1]
    out = np.empty(rows.shape[:-1] + (size,), np.float32)
    out[..., :length] = rows
    extra = size - length
    if extra:
        t = (np.arange(1, extra + 1, dtype=np.float32) / (extra + 1))
        weight = 0.5 - 0.5 * np.cos(np.pi * t)          # 0 -> 1 across the padding
        first, last = rows[..., :1], rows[..., -1:]
        out[..., length:] = last + (first - last) * weight
    return out


# --------------------------------------------------------------------------
# Corners


def _fill_outside(out, raw, first, last, fill, rng):
    from .kernels import fill_outside

    if fill == "zero":
        fill_outside(out, first, last, np.zeros((len(out), 1, 1), np.float32))
        return
    means = raw.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)[:, None, None]
    if fill == "mean":
        fill_outside(out, first, last, means)
        return
    rng = np.random.default_rng() if rng is None else rng
    stds = raw.std(axis=(1, 2), dtype=np.float64).astype(np.float32)[:, None, None]
    noise = rng.standard_normal(out.shape, dtype=np.float32) * stds + means
    fill_outside(out, first, last, noise)


def resize_box(images, box, fill="zero"):
    """Crop or pad ``(B, N, N)`` images to ``box`` keeping the centre at ``N//2 -> box//2``."""
    n = images.shape[-1]
    if box == n:
        return images
    c_in, c_out = n // 2, box // 2
    out = np.zeros(images.shape[:-2] + (box, box), np.float32)
    if fill != "zero":
        out += images.mean(axis=(-2, -1), keepdims=True)
    lo = max(c_in - c_out, 0)
    hi = min(c_in - c_out + box, n)
    dst = lo - (c_in - c_out)
    out[..., dst:dst + hi - lo, dst:dst + hi - lo] = images[..., lo:hi, lo:hi]
    return out
