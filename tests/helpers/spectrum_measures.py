"""Measurements on averaged power spectra, shared by the avgps and Scipion tests."""
import numpy as np


def axial_profile(s, radial_max=None):
    """Power summed along each layer line (vertical output: rows), near the meridian."""
    c = s.shape[0] // 2
    if radial_max is not None:
        s = s[:, c - radial_max:c + radial_max + 1]
    return s.sum(axis=1)


def peak_position(profile, expected_px, window=2):
    """Sub-pixel maximum of ``profile`` near index ``c + expected_px``."""
    c = len(profile) // 2
    i0 = int(round(c + expected_px))
    idx = np.arange(i0 - window, i0 + window + 1)
    i = idx[np.argmax(profile[idx])]
    left, mid, right = profile[i - 1], profile[i], profile[i + 1]
    return (i - c) + 0.5 * (left - right) / (left - 2 * mid + right)
