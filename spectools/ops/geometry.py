"""2D geometry of the alignment convention: rotations, affine matrices and their inverse.

Pure functions on numbers and arrays; the convention is written out in
``conventions/model.md``: a feature at ``p`` in a raw image lies at
``q = F^m · R(psi) · (p + o)`` in the aligned image, ``R(t) = [[cos t, -sin t], [sin t, cos t]]``
acting on ``(x, y)`` with ``x = col - N//2``, ``y = row - N//2``, ``F = diag(-1, 1)``.
"""
import numpy as np


def rotation_matrix(angle_deg):
    """``R(t) = [[cos t, -sin t], [sin t, cos t]]`` for an array of angles.

    Returns
    -------
    numpy.ndarray
        Shape ``angle.shape + (2, 2)``, acting on ``(x, y)`` column vectors.
    """
    t = np.deg2rad(np.asarray(angle_deg, dtype=float))
    c, s = np.cos(t), np.sin(t)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def rotate_xy(angle_deg, x, y):
    """Apply ``R(angle)`` to the vectors ``(x, y)``; returns ``(x', y')``."""
    t = np.deg2rad(np.asarray(angle_deg, dtype=float))
    c, s = np.cos(t), np.sin(t)
    return c * x - s * y, s * x + c * y


def transformed_direction(angle_deg, psi_deg, mirror=False, turn_deg=0.0):
    """Angle of a direction (e.g. the CTF's astigmatism axis) after the image is aligned.

    A direction at ``angle`` from +x towards +y in the raw image points at
    ``s (angle + psi) + turn`` in the image ``R(turn) F^m R(psi)`` makes,
    ``s = -1`` when mirrored (the mirror negates x, so angles change sign).
    Not wrapped.
    """
    sign = np.where(np.asarray(mirror, bool), -1.0, 1.0)
    return sign * (np.asarray(angle_deg, float) + np.asarray(psi_deg, float)) + turn_deg


def affine_matrix(psi_deg, origin_x_px, origin_y_px, mirror=False):
    """Homogeneous matrix ``A`` with ``q = A · p`` (raw -> aligned), ``(x, y, 1)``.

    ``A = [[F^m R(psi), F^m R(psi) o], [0, 0, 1]]``.  Coordinates are relative
    to the rotation centre ``(N//2, N//2)``, x along columns, y along rows.
    This is also Scipion's ``ALIGN_2D`` matrix (rows/columns 0, 1 and 3 of its
    4x4).  Arguments broadcast; the result has shape ``broadcast + (3, 3)``.
    """
    psi, ox, oy, mirror = np.broadcast_arrays(np.asarray(psi_deg, float),
                                              np.asarray(origin_x_px, float),
                                              np.asarray(origin_y_px, float),
                                              np.asarray(mirror, bool))
    lin = rotation_matrix(psi)
    lin[..., 0, :] *= np.where(mirror, -1.0, 1.0)[..., None]
    out = np.zeros(psi.shape + (3, 3))
    out[..., :2, :2] = lin
    out[..., :2, 2] = np.einsum("...ij,...j->...i", lin, np.stack([ox, oy], -1))
    out[..., 2, 2] = 1.0
    return out


def inverse_affine_matrix(psi_deg, origin_x_px, origin_y_px, mirror=False):
    """Homogeneous matrix with ``p = A⁻¹ · q`` (aligned -> raw): ``p = R(-psi) F^m q - o``.

    This is what a resampler needs: for every output pixel ``q`` it samples
    the raw image at ``p``.
    """
    psi, ox, oy, mirror = np.broadcast_arrays(np.asarray(psi_deg, float),
                                              np.asarray(origin_x_px, float),
                                              np.asarray(origin_y_px, float),
                                              np.asarray(mirror, bool))
    lin = rotation_matrix(-psi)
    lin[..., :, 0] *= np.where(mirror, -1.0, 1.0)[..., None]
    out = np.zeros(psi.shape + (3, 3))
    out[..., :2, :2] = lin
    out[..., 0, 2] = -ox
    out[..., 1, 2] = -oy
    out[..., 2, 2] = 1.0
    return out


def alignment_from_matrix(matrix):
    """Decompose ``q = A · p`` into ``(psi_deg, origin_x_px, origin_y_px, mirror)``.

    Inverse of :func:`affine_matrix`.  ``matrix`` has shape ``(..., 3, 3)`` or
    ``(..., 2, 3)``; its 2x2 part must be a rotation, optionally mirrored
    (determinant -1).
    """
    m = np.asarray(matrix, dtype=float)
    lin = m[..., :2, :2].copy()
    mirror = np.linalg.det(lin) < 0
    lin[..., 0, :] *= np.where(mirror, -1.0, 1.0)[..., None]
    psi = np.rad2deg(np.arctan2(lin[..., 1, 0], lin[..., 0, 0]))
    tx = np.where(mirror, -m[..., 0, 2], m[..., 0, 2])
    ox, oy = rotate_xy(-psi, tx, m[..., 1, 2])
    return psi, ox, oy, mirror


def angle_grid(angles_deg, tolerance_deg=0.005):
    """The grid the angles lie on, if they lie on one (2D classification stores psi so).

    Angles (wrapped to [0, 360)) that agree within ``tolerance_deg`` are one
    value.  They lie on a grid when there are fewer distinct values than half
    the angles and every gap between neighbouring values is a whole multiple
    of one step (the largest such step among the smallest gap divided by 1
    to 12).

    Returns
    -------
    dict or None
        ``{"distinct": int, "step_deg": float}``; ``step_deg`` is None when
        the values repeat but fit no common step.  None for fewer than two
        distinct values' worth of angles or angles that do not repeat.
    """
    wrapped = np.sort(np.mod(np.asarray(angles_deg, float), 360.0))
    if len(wrapped) < 4:
        return None
    values = wrapped[np.concatenate([[True], np.diff(wrapped) > tolerance_deg])]
    if len(values) > 1 and 360.0 - values[-1] + values[0] <= tolerance_deg:
        values = values[:-1]                   # 359.999 and 0 are one angle
    distinct = len(values)
    if distinct < 2 or distinct > len(wrapped) // 2:
        return None
    gaps = np.diff(np.concatenate([values, [values[0] + 360.0]]))
    step = None
    for divisor in range(1, 13):
        candidate = gaps.min() / divisor
        multiples = gaps / candidate
        if np.all(np.abs(multiples - np.round(multiples)) * candidate <= 2 * tolerance_deg):
            step = float(candidate)
            break
    return {"distinct": int(distinct), "step_deg": round(step, 4) if step else None}
