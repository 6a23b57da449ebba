"""Detector corrections of raw frames: gain and dark references, their orientation, hot pixels.

Pure array functions; reading the references from files is :mod:`spectools.io.frames`.
"""
import numpy as np
from scipy import ndimage

from ..errors import Hint, SpectoolsError


def find_hot_pixels(image, sigma):
    """Pixels more than ``sigma`` robust standard deviations (1.4826 x MAD) from the median."""
    ref = np.asarray(image, np.float64)
    median = np.median(ref)
    mad = 1.4826 * np.median(np.abs(ref - median)) or ref.std() or 1.0
    return np.abs(ref - median) > sigma * mad


def replace_pixels(image, mask):
    """Replace the masked pixels by the mean of their unmasked 3x3 neighbours."""
    out = np.asarray(image, np.float32).copy()
    if not mask.any():
        return out
    good = (~mask).astype(np.float32)
    sums = ndimage.uniform_filter(out * good, 3, mode="nearest")
    weights = ndimage.uniform_filter(good, 3, mode="nearest")
    fallback = float(np.median(out[~mask])) if (~mask).any() else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        local = np.where(weights > 0, sums / weights, fallback)
    out[mask] = local[mask]
    return out


def rotate_flip(image, rot=0, flip=0):
    """Rotate then flip an image as RELION's ``--gain_rot`` and ``--gain_flip`` do.

    ``rot`` turns the image by ``rot`` x 90 degrees clockwise as displayed with
    row 0 at the top (relion_display's view); ``flip`` 1 turns it upside down
    (reverses the rows), 2 left to right (reverses the columns).  Rotation comes
    first, then the flip.  In numpy terms::

        np.flip(np.rot90(image, k=-rot), axis={1: 0, 2: 1}[flip])

    From RELION 4/5: ``MotioncorrRunner::prepareGainReference()`` in
    ``src/motioncorr_runner.cpp`` (about lines 377-412 at commit 20c2e856)
    applies ``ImageOp::rotate90/180/270`` for ``gain_rotation`` 1/2/3, then
    ``ImageOp::flipY`` (1) or ``flipX`` (2); the option help (lines 103-104)
    reads "Rotate the gain reference this number times 90 degrees clock-wise
    (in relion_display). This is same as MotionCor2's RotGain" and "0, 1 (flip
    Y == upside down) or 2 (flip X == left to right)".  In
    ``src/jaz/single_particle/img_proc/image_op.h``, ``rotate90`` sets
    ``dest(y'=x, x'=ny-1-y) = src(y, x)``, which is ``np.rot90(src, -1)``;
    ``flipY`` sets ``dest(y, x) = src(ny-1-y, x)``.  RELION's arrays are
    ``(y, x)`` with x fastest, like numpy's, and relion_display draws row 0
    at the top.  RELION applies these to references in its in-memory
    orientation (TIFF rows reversed), which :func:`read_reference` gives.

    Parameters
    ----------
    image : array_like, shape (..., ny, nx)
    rot : {0, 1, 2, 3}
    flip : {0, 1, 2}

    Returns
    -------
    numpy.ndarray
        A new float32 array, ``(..., nx, ny)`` for odd ``rot``.
    """
    rot, flip = _check_rot_flip(rot, flip)
    out = np.rot90(np.asarray(image), k=-rot, axes=(-2, -1))
    if flip:
        out = np.flip(out, axis=-2 if flip == 1 else -1)
    return np.ascontiguousarray(out, dtype=np.float32)


def _check_rot_flip(rot, flip):
    if isinstance(rot, bool) or rot not in (0, 1, 2, 3):
        raise SpectoolsError(f"the gain rotation must be 0, 1, 2 or 3 (times 90 degrees "
                             f"clockwise), not {rot!r}")
    if isinstance(flip, bool) or flip not in (0, 1, 2):
        raise SpectoolsError("the gain flip must be 0 (none), 1 (upside down) or 2 (left to "
                             f"right), not {flip!r}")
    return int(rot), int(flip)


def check_gain(gain, path):
    """Refuse a gain reference that would zero every frame (0, or not positive, everywhere).

    A gain multiplies the frames: one without a single positive pixel leaves
    nothing (or only negated counts) to compute a spectrum from.
    """
    gain = np.asarray(gain)
    if gain.size and not (gain > 0).any():
        what = "0 everywhere" if not gain.any() else "nowhere positive"
        raise SpectoolsError(f"gain reference is {what}: every corrected frame would be "
                             f"{'0' if not gain.any() else 'negative or 0'}", path)


def reference_notes(gain):
    """Things worth telling a user about a gain reference, as short sentences.

    Returns
    -------
    list of str
        E.g. ``["1234 zero pixels (0.0074%): dead pixels, 0 in every corrected
        frame"]``; empty when nothing is remarkable.
    """
    gain = np.asarray(gain)
    notes = []
    size = gain.size
    zeros = int(np.count_nonzero(gain == 0))
    if zeros:
        notes.append(f"{zeros} zero pixels ({100 * zeros / size:.2g}%): dead pixels, 0 in every "
                     "corrected frame")
    negative = int(np.count_nonzero(gain < 0))
    if negative:
        notes.append(f"{negative} negative pixels: not a multiplicative gain?")
    if size and np.all(gain == gain.flat[0]):
        notes.append(f"every pixel is {float(gain.flat[0]):g}: the reference corrects nothing")
    return notes


def check_reference_shape(reference_path, raw_reference, frame_shape, *, rot=0,
                          what="gain reference"):
    """Refuse a reference that cannot match the frames, and say what would.

    Parameters
    ----------
    reference_path : path-like
        Named in the message.
    raw_reference : array_like or tuple
        The reference before rotation and flip, or its shape ``(ny, nx)``.
    frame_shape : tuple
        ``(ny, nx)`` of the frames.
    rot : int
        The gain rotation (RELION's ``--gain_rot``) that will be applied (odd
        values swap x and y).
    what : str
        What the reference is, for the message.

    Raises
    ------
    SpectoolsError
        When the rotated reference is not ``frame_shape``.  The message gives
        both sizes and, when another rotation would fit (a transposed
        reference) or the reference is twice the frame size (super-resolution),
        says so (a :class:`~spectools.errors.Hint` on ``gain_rot``).  Shapes cannot tell rotations of a square image apart, nor
        flips: check a corrected frame by eye for those.
    """
    shape = raw_reference.shape if hasattr(raw_reference, "shape") else raw_reference
    shape = tuple(int(n) for n in shape)[-2:]
    frames = tuple(int(n) for n in frame_shape)[-2:]
    rot, _ = _check_rot_flip(rot, 0)
    if (shape[::-1] if rot % 2 else shape) == frames:
        return
    (ny, nx), (fy, fx) = shape, frames
    message = f"{what} is {nx}x{ny} pixels"
    if rot % 2:
        message += f" ({ny}x{nx} after a gain rotation of {rot})"
    message += f" but the frames are {fx}x{fy} (width x height)"
    # Which rotation parity (0: 0 or 2, 1: 1 or 3) makes x and y correspond.
    turns = {0: shape, 1: shape[::-1]}
    parity = next((p for p, s in turns.items() if s == frames), None)
    twice = next((p for p, s in turns.items() if s == (2 * fy, 2 * fx)), None)
    half = next((p for p, s in turns.items() if (2 * s[0], 2 * s[1]) == frames), None)
    hint = None
    if parity is not None:
        hint = Hint("gain_rot", _ROTATIONS[parity], "make it fit (which one, and which flip, "
                                                    "the shapes cannot tell)")
    elif twice is not None or half is not None:
        if twice is not None:
            message += ("; the reference is twice the frame size: a super-resolution "
                        "reference for frames saved binned 2x; bin the reference 2x2 or use "
                        "one made at the frames' pixel size")
        else:
            message += ("; the frames are twice the reference's size: super-resolution frames "
                        "with a physical-pixel reference; use a super-resolution reference or "
                        "bin the frames 2x")
        needed = twice if twice is not None else half
        if needed != rot % 2 and shape[0] != shape[1]:
            hint = Hint("gain_rot", _ROTATIONS[needed], "turn it as the frames are")
    raise SpectoolsError(message, reference_path, hint=hint)


#: The gain rotations of each parity (0: x stays x, 1: x and y swap).
_ROTATIONS = {0: "0 or 2", 1: "1 or 3"}


def apply_gain_dark(frame, gain=None, dark=None):
    """``(frame - dark) * gain`` in float32, as RELION and CTFFIND correct raw frames.

    The dark reference is subtracted first, then the gain multiplies.  Either
    may be omitted.  ``frame`` may be ``(ny, nx)`` or ``(k, ny, nx)``; the
    references broadcast.  Nothing is modified in place.
    """
    out = np.array(frame, dtype=np.float32, copy=True)
    if dark is not None:
        out -= np.asarray(dark, dtype=np.float32)
    if gain is not None:
        out *= np.asarray(gain, dtype=np.float32)
    return out
