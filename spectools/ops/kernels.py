"""Compiled inner loops (numba) of the resampling, spectrum, raster and axis operations.

Each kernel is a plain loop over pixels that numpy would run as several
passes with temporaries; compiled with ``nogil=True`` it lets the worker
threads of a pipeline use every core.  The public functions that call them
live in :mod:`.resample`, :mod:`.power`, :mod:`.masks` and :mod:`.axis` and
import this module when first used, so that ``import spectools`` does not
pay for importing numba.  Compiled code is cached on disk (``cache=True``,
numba's ``__pycache__`` or ``NUMBA_CACHE_DIR``): only the first run on a
machine compiles.

Conventions as in :mod:`.resample`: images ``img[row, col]``, pixel
coordinates ``x = col - N//2``, ``y = row - N//2``.
"""
import math

import numpy as np
from numba import njit

_KERNEL = dict(nogil=True, cache=True, fastmath=True, error_model="numpy")
#: Lines shifted together before a transposed write (16 float32 = one cache line).
_BLOCK = 16


# --------------------------------------------------------------------------
# Sub-pixel shifts of lines (the windowed-sinc shears)


@njit(**_KERNEL)
def shift_lines(src, out, disp, table, transpose):
    """``out[r, l] = src[r](l + disp[r])``, interpolated with a tabulated windowed sinc.

    Parameters
    ----------
    src : float32 (R, L)
        Lines; beyond their ends they continue with their end values.
    out : float32 (R, M), or (M, R) with ``transpose``
    disp : float64 (R,)
        Position in ``src[r]`` of output sample 0 of line ``r``.
    table : float32 (S + 1, T)
        Taps for fractional positions ``i / S`` (row ``i``); between rows
        they are interpolated linearly.  Tap ``j`` weighs sample
        ``floor(t) - T/2 + 1 + j`` for a position ``t``.
    transpose : bool
        Write line ``r`` as column ``r`` of ``out``.
    """
    n_lines, length = src.shape
    m = out.shape[0] if transpose else out.shape[1]
    steps = table.shape[0] - 1
    ntap = table.shape[1]
    half = ntap // 2
    span = m + ntap - 1
    taps = np.empty(ntap, np.float32)
    ext = np.empty(span, np.float32)
    # Lines are computed in blocks of _BLOCK, so that a transposed write
    # fills whole cache lines (a column write with a power-of-two stride
    # would thrash the cache).
    block = np.empty((_BLOCK, m), np.float32)
    for r in range(n_lines):
        d = disp[r]
        whole = math.floor(d)
        pos = (d - whole) * steps
        i = min(int(pos), steps - 1)
        g = np.float32(pos - i)
        for j in range(ntap):
            taps[j] = table[i, j] + g * (table[i + 1, j] - table[i, j])
        # ext[t] = src[r, clamp(first + t)]: the line with its ends continued.
        first = int(whole) - half + 1
        a = min(max(-first, 0), span)
        b = min(max(length - first, a), span)
        ext[:a] = src[r, 0]
        ext[a:b] = src[r, first + a:first + b]
        ext[b:] = src[r, length - 1]
        line = block[r % _BLOCK] if transpose else out[r]
        for j in range(m):
            line[j] = 0.0
        for k in range(ntap):
            w = taps[k]
            for j in range(m):
                line[j] += w * ext[j + k]
        if transpose and (r % _BLOCK == _BLOCK - 1 or r == n_lines - 1):
            r0 = r - r % _BLOCK
            for j in range(m):
                for i in range(r - r0 + 1):
                    out[j, r0 + i] = block[i, j]


@njit(**_KERNEL)
def _turn_into(image, k, out):
    """``out = R(90 k) image`` about ``N//2`` (an exact index permutation, periodic).

    Output pixel ``q = (x, y)`` takes the raw pixel ``p = R(-90 k) q``; for
    even ``N`` the one source row or column beyond the box wraps around.
    Quarter turns go tile by tile, so that reading columns stays in cache.
    """
    n = image.shape[0]
    c = n // 2
    k = k % 4
    if k == 0:
        out[:] = image
        return
    reverse = np.empty(n, np.int64)      # index i -> (2c - i) mod n: x -> -x
    for i in range(n):
        reverse[i] = (2 * c - i) % n
    if k == 2:
        for row in range(n):
            src = image[reverse[row]]
            for col in range(n):
                out[row, col] = src[reverse[col]]
        return
    for row0 in range(0, n, _BLOCK):
        for col0 in range(0, n, _BLOCK):
            for row in range(row0, min(row0 + _BLOCK, n)):
                for col in range(col0, min(col0 + _BLOCK, n)):
                    if k == 1:      # p = (y, -x)
                        out[row, col] = image[reverse[col], row]
                    else:           # p = (-y, x)
                        out[row, col] = image[col, reverse[row]]


@njit(**_KERNEL)
def sinc_rotate(images, turns, residual_deg, tx, ty, mirror, table, out):
    """``out[b] = F^m (R(residual) R(90 turns) images[b] + t)`` by three windowed-sinc shears.

    The residual angle (|a| <= 45 degrees) is Paeth's ``R = Sx(alpha) Sy(beta)
    Sx(alpha)``, ``alpha = -tan(a/2)``, ``beta = sin(a)``; every shear shifts
    whole lines (one set of taps per line), ``ty`` rides on the y-shear and
    ``tx - alpha ty`` on the last x-shear.  The first shear writes only the
    columns the last one reads.  The mirror negates x last.
    """
    n_images, n, _ = images.shape
    c = n // 2
    work = np.empty((n, n), np.float32)
    final = np.empty((n, n), np.float32)
    # The window of passes 1-2 is at most n + (n - 1) tan(22.5 deg) + 4 wide.
    most = n + int(math.ceil(0.42 * n)) + 8
    disp = np.empty(max(n, most), np.float64)
    buffer_t = np.empty(most * n, np.float32)
    buffer = np.empty(most * n, np.float32)
    for b in range(n_images):
        _turn_into(images[b], turns[b], work)
        a = math.radians(residual_deg[b])
        alpha = -math.tan(a / 2.0)
        beta = math.sin(a)
        tx3 = tx[b] - alpha * ty[b]
        end1 = alpha * -c + tx3
        end2 = alpha * (n - 1 - c) + tx3
        lo = int(math.floor(-c - max(end1, end2))) - 1
        hi = int(math.ceil(n - c - min(end1, end2))) + 1
        width = hi - lo
        # Pass 1: x-shear of the rows into the window [lo, hi), written as columns.
        window_t = buffer_t[:width * n].reshape((width, n))
        for r in range(n):
            disp[r] = c + lo - alpha * (r - c)
        shift_lines(work, window_t, disp[:n], table, True)
        # Pass 2: y-shear of the window's columns (rows of window_t), back as rows.
        window = buffer[:n * width].reshape((n, width))
        for line in range(width):
            disp[line] = -(beta * (line + lo) + ty[b])
        shift_lines(window_t, window, disp[:width], table, True)
        # Pass 3: x-shear back into the box, with the remaining x translation.
        for r in range(n):
            disp[r] = -lo - c - (alpha * (r - c) + tx3)
        shift_lines(window, final, disp[:n], table, False)
        if mirror[b]:
            for row in range(n):
                for col in range(n):
                    out[b, row, col] = final[row, (2 * c - col) % n]
        else:
            out[b] = final


@njit(**_KERNEL)
def bilinear_affine(images, inverse, first, last, out):
    """``out[b](q) = images[b](A_b q)``, bilinear; 0 where ``A_b q`` is outside the box.

    RELION's ``applyGeometry`` (``DONT_WRAP``): coordinates ``(x, y)`` about
    ``N//2``, ``inverse[b]`` the 3x3 aligned -> raw matrix ``A_b``; a source
    inside ``[0, N-1]`` (+- 1e-6) is clamped to the box and interpolated from
    its four neighbours (the last row and column repeat).  ``first`` and
    ``last`` (B, N) are the inclusive columns of each output row whose source
    is inside (:func:`.resample.inside_columns`).  One pass: rotation, shift
    and mirror are all in the matrix.
    """
    n_images, n, _ = images.shape
    c = n // 2
    top = n - 1.0
    # Each image is copied first into rows of n + 16 samples, one more column
    # and row repeating the last: the four neighbours need no bounds, and a
    # rotated walk through the rows no longer hits the few cache sets that a
    # power-of-two row stride maps to (which made it twice as slow).
    stride = n + _BLOCK
    padded = np.empty((n + 1) * stride, np.float32)
    for b in range(n_images):
        for r in range(n):
            padded[r * stride:r * stride + n] = images[b, r]
            padded[r * stride + n] = images[b, r, n - 1]
        padded[n * stride:n * stride + n + 1] = padded[(n - 1) * stride:(n - 1) * stride + n + 1]
        a00, a01, a02 = inverse[b, 0, 0], inverse[b, 0, 1], inverse[b, 0, 2]
        a10, a11, a12 = inverse[b, 1, 0], inverse[b, 1, 1], inverse[b, 1, 2]
        for row in range(n):
            x0 = a01 * (row - c) + a02 + c - a00 * c
            y0 = a11 * (row - c) + a12 + c - a10 * c
            lo = max(0, min(first[b, row], n))
            hi = max(lo, min(last[b, row] + 1, n))
            line = out[b, row]
            line[:lo] = 0.0
            line[hi:] = 0.0
            for col in range(lo, hi):
                xp = min(max(x0 + a00 * col, 0.0), top)
                yp = min(max(y0 + a10 * col, 0.0), top)
                m1 = int(xp)
                n1 = int(yp)
                wx = np.float32(xp - m1)
                wy = np.float32(yp - n1)
                k = n1 * stride + m1
                upper = padded[k] + wx * (padded[k + 1] - padded[k])
                lower = padded[k + stride] + wx * (padded[k + stride + 1] - padded[k + stride])
                line[col] = upper + wy * (lower - upper)


@njit(**_KERNEL)
def fill_outside(out, first, last, values):
    """Set ``out[b, row, col]`` outside columns ``first..last`` of each row to ``values``.

    ``values`` is (B, 1, 1) (one value per image) or (B, N, N).
    """
    n_images, ny, nx = out.shape
    per_pixel = values.shape[1] > 1
    for b in range(n_images):
        for row in range(ny):
            lo = max(0, min(first[b, row], nx))
            hi = max(lo, min(last[b, row] + 1, nx))
            if per_pixel:
                for col in range(lo):
                    out[b, row, col] = values[b, row, col]
                for col in range(hi, nx):
                    out[b, row, col] = values[b, row, col]
            else:
                v = values[b, 0, 0]
                for col in range(lo):
                    out[b, row, col] = v
                for col in range(hi, nx):
                    out[b, row, col] = v


# --------------------------------------------------------------------------
# Power spectra


@njit(**_KERNEL)
def accumulate_power(spectra, total):
    """``total += sum over b of |spectra[b]|^2`` (complex64 in, float64 sums)."""
    n_images, rows, cols = spectra.shape
    for b in range(n_images):
        for i in range(rows):
            for j in range(cols):
                v = spectra[b, i, j]
                total[i, j] += v.real * v.real + v.imag * v.imag


@njit(**_KERNEL)
def normalize_in_mask(images, masks, per_image_mask, out):
    """``out = m (x - mean) / std`` with mean and std weighted by the mask ``m``.

    ``masks`` is (1, N, N) for one mask, or (B, N, N) with ``per_image_mask``.
    Images with no variance inside the mask are only centred.
    """
    n_images, ny, nx = images.shape
    for b in range(n_images):
        m = masks[b] if per_image_mask else masks[0]
        wsum = 0.0
        total = 0.0
        for i in range(ny):
            for j in range(nx):
                w = m[i, j]
                wsum += w
                total += w * images[b, i, j]
        mean = total / wsum if wsum > 0 else 0.0
        var = 0.0
        for i in range(ny):
            for j in range(nx):
                d = images[b, i, j] - mean
                var += m[i, j] * d * d
        var = var / wsum if wsum > 0 else 0.0
        scale = 1.0 / math.sqrt(var) if var > 0 else 1.0
        mean32 = np.float32(mean)
        scale32 = np.float32(scale)
        for i in range(ny):
            for j in range(nx):
                out[b, i, j] = (images[b, i, j] - mean32) * (m[i, j] * scale32)


# --------------------------------------------------------------------------
# Projections (the axis angle)


@njit(**_KERNEL)
def projection_variances(image, angles_deg):
    """For each angle, the sum of squares of the image's projection along that direction.

    Every pixel is split linearly between the two bins of its coordinate
    across the direction (``u = -sin(t) x + cos(t) y``, bins one pixel
    wide): the projection ``p(u) = sum along (cos t, sin t)``.
    """
    n = image.shape[0]
    c = n // 2
    nbins = 2 * n + 4
    offset = n + 2
    scores = np.empty(angles_deg.shape[0])
    profile = np.empty(nbins)
    for a in range(angles_deg.shape[0]):
        t = math.radians(angles_deg[a])
        sn, cs = math.sin(t), math.cos(t)
        for k in range(nbins):
            profile[k] = 0.0
        for row in range(n):
            base = cs * (row - c) + offset
            for col in range(n):
                v = image[row, col]
                if v == 0.0:
                    continue
                u = base - sn * (col - c)
                k = int(math.floor(u))
                f = u - k
                profile[k] += (1.0 - f) * v
                profile[k + 1] += f * v
        s = 0.0
        for k in range(nbins):
            s += profile[k] * profile[k]
        scores[a] = s
    return scores
