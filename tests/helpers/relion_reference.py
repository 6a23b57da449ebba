"""Independent numpy re-implementations of RELION operations, for comparisons.

Written from RELION's source as described in ../shared/research/conventions.md
§2 (src/transformations.h applyGeometry, src/apps/image_handler.cpp), not
from spectools' code.
"""
import numpy as np


def relion_bilinear(image, matrix):
    """applyGeometry(..., A, IS_NOT_INV, DONT_WRAP) for a 3x3 matrix A acting on (x, y, 1).

    Every output pixel q samples the input at A^-1 q, bilinearly; sources
    outside [0, N-1] (with RELION's 1e-6 tolerance) give 0.  Coordinates are
    relative to the centre N//2 (RELION's logical origin).
    """
    n = image.shape[0]
    c = n // 2
    ainv = np.linalg.inv(matrix)
    i, j = np.mgrid[:n, :n]
    x, y = j - c, i - c
    xp = ainv[0, 0] * x + ainv[0, 1] * y + ainv[0, 2] + c
    yp = ainv[1, 0] * x + ainv[1, 1] * y + ainv[1, 2] + c
    inside = (xp >= -1e-6) & (yp >= -1e-6) & (xp <= n - 1 + 1e-6) & (yp <= n - 1 + 1e-6)
    xp, yp = np.clip(xp, 0, n - 1), np.clip(yp, 0, n - 1)
    m1, n1 = np.floor(xp).astype(int), np.floor(yp).astype(int)
    m2, n2 = np.minimum(m1 + 1, n - 1), np.minimum(n1 + 1, n - 1)
    wx, wy = xp - m1, yp - n1
    img = image.astype(np.float64)
    out = ((1 - wy) * ((1 - wx) * img[n1, m1] + wx * img[n1, m2])
           + wy * ((1 - wx) * img[n2, m1] + wx * img[n2, m2]))
    return np.where(inside, out, 0.0)


def stack_create_matrix(psi_deg, ox, oy):
    """relion_stack_create --apply_transformation (>= 3.0.1): A = [R(psi) | R(psi) o]."""
    t = np.deg2rad(psi_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    a = np.eye(3)
    a[:2, :2] = rot
    a[:2, 2] = rot @ [ox, oy]
    return a


def avg_ampl2_ali(images, psi_deg, origin_x_px=None, origin_y_px=None):
    """relion_image_handler --avg_ampl2_ali: mean of |FFT(aligned)/N^2|^2, half plane.

    The aligned image uses A = [R(psi) | o] (the pre-3.0.1 form) with o read
    from the deprecated pixel labels rlnOriginX/Y, absent from RELION >= 3.1
    files, i.e. 0 there.  Output shape (N, N//2 + 1), origin at [0, 0].
    """
    n = images.shape[-1]
    total = np.zeros((n, n // 2 + 1))
    for k, image in enumerate(images):
        a = np.eye(3)
        t = np.deg2rad(psi_deg[k])
        a[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
        if origin_x_px is not None:
            a[:2, 2] = [origin_x_px[k], origin_y_px[k]]
        aligned = relion_bilinear(image, a)
        total += np.abs(np.fft.rfft2(aligned) / n ** 2) ** 2
    return total / len(images)
