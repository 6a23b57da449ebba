"""Detector corrections: spectools.ops.detector (orientation of references, shapes, gain/dark).

Orientations are checked against RELION's own loops, transcribed; nothing
here reads files.
"""
import numpy as np
import pytest

from helpers.errors import raises_one_line
from spectools.errors import SpectoolsError
from spectools.ops.detector import (apply_gain_dark, check_reference_shape, reference_notes,
                                    rotate_flip)

# An asymmetric 3x4 image as relion_display shows it: row 0 at the top.
G = np.array([[1, 2, 3, 4],
              [5, 6, 7, 8],
              [9, 10, 11, 12]], np.float32)


def test_rotation_and_flip_follow_relion():
    # --gain_rot 1: 90 degrees clockwise on screen; the left column, read bottom
    # to top, becomes the top row (MotionCor2's RotGain 1, ImageOp::rotate90).
    np.testing.assert_array_equal(rotate_flip(G, rot=1), [[9, 5, 1],
                                                          [10, 6, 2],
                                                          [11, 7, 3],
                                                          [12, 8, 4]])
    np.testing.assert_array_equal(rotate_flip(G, rot=2), [[12, 11, 10, 9],
                                                          [8, 7, 6, 5],
                                                          [4, 3, 2, 1]])
    np.testing.assert_array_equal(rotate_flip(G, rot=3), [[4, 8, 12],
                                                          [3, 7, 11],
                                                          [2, 6, 10],
                                                          [1, 5, 9]])
    # --gain_flip 1: upside down; 2: left to right.
    np.testing.assert_array_equal(rotate_flip(G, flip=1), [[9, 10, 11, 12],
                                                           [5, 6, 7, 8],
                                                           [1, 2, 3, 4]])
    np.testing.assert_array_equal(rotate_flip(G, flip=2), [[4, 3, 2, 1],
                                                           [8, 7, 6, 5],
                                                           [12, 11, 10, 9]])
    # Rotation first, then the flip (MotioncorrRunner::prepareGainReference).
    np.testing.assert_array_equal(rotate_flip(G, rot=1, flip=1), [[12, 8, 4],
                                                                  [11, 7, 3],
                                                                  [10, 6, 2],
                                                                  [9, 5, 1]])
    np.testing.assert_array_equal(rotate_flip(G, rot=1, flip=2), [[1, 5, 9],
                                                                  [2, 6, 10],
                                                                  [3, 7, 11],
                                                                  [4, 8, 12]])


def relion_rotate_flip(src, rot, flip):
    """RELION's loops, transcribed: ImageOp::rotate90/180/270 then flipY/flipX."""
    ny, nx = src.shape
    if rot in (1, 3):
        out = np.empty((nx, ny), src.dtype)
    else:
        out = np.empty_like(src)
    for y in range(ny):
        for x in range(nx):
            if rot == 0:
                out[y, x] = src[y, x]
            elif rot == 1:
                out[x, ny - 1 - y] = src[y, x]
            elif rot == 2:
                out[ny - 1 - y, nx - 1 - x] = src[y, x]
            else:
                out[nx - 1 - x, y] = src[y, x]
    src, (ny, nx) = out, out.shape
    out = np.empty_like(src)
    for y in range(ny):
        for x in range(nx):
            if flip == 0:
                out[y, x] = src[y, x]
            elif flip == 1:
                out[y, x] = src[ny - 1 - y, x]
            else:
                out[y, x] = src[y, nx - 1 - x]
    return out


@pytest.mark.parametrize("rot", [0, 1, 2, 3])
@pytest.mark.parametrize("flip", [0, 1, 2])
def test_rotate_flip_matches_relion_loops(rot, flip):
    image = np.random.default_rng(rot * 3 + flip).normal(size=(5, 7)).astype(np.float32)
    np.testing.assert_array_equal(rotate_flip(image, rot, flip),
                                  relion_rotate_flip(image, rot, flip))


def test_bad_rot_and_flip():
    with pytest.raises(SpectoolsError, match="gain rotation must be 0, 1, 2 or 3"):
        rotate_flip(G, rot=4)
    with pytest.raises(SpectoolsError, match="gain flip must be 0"):
        rotate_flip(G, flip=3)


def test_reference_shape_messages(tmp_path):
    path = tmp_path / "gain.mrc"
    assert check_reference_shape(path, np.zeros((4, 3)), (4, 3)) is None
    assert check_reference_shape(path, np.zeros((3, 4)), (4, 3), rot=1) is None
    with raises_one_line(path, r"gain reference is 4x3 pixels but the frames are 3x4 "
                               r"\(width x height\) \(pass gain_rot='1 or 3' to make it fit"):
        check_reference_shape(path, np.zeros((3, 4)), (4, 3))
    with raises_one_line(path, r"4x3 after a gain rotation of 1\).*gain_rot='0 or 2'") as info:
        check_reference_shape(path, (4, 3), (4, 3), rot=1)
    assert info.value.hint.option == "gain_rot" and info.value.hint.value == "0 or 2"
    with raises_one_line(path, "twice the frame size: a super-resolution reference"):
        check_reference_shape(path, np.zeros((8, 6)), (4, 3))
    with raises_one_line(path, "super-resolution.*gain_rot='1 or 3' to turn it"):
        check_reference_shape(path, np.zeros((6, 8)), (4, 3))
    with raises_one_line(path, "frames are twice the reference's size"):
        check_reference_shape(path, np.zeros((4, 3)), (8, 6))
    with raises_one_line(path, r"gain reference is 5x5 pixels but the frames are 3x3 "
                               r"\(width x height\)$"):
        check_reference_shape(path, np.zeros((5, 5)), (3, 3))


def test_apply_gain_dark_is_pure():
    frame = np.array([[10, 20], [30, 40]], np.uint16)
    gain = np.array([[1.0, 0.5], [2.0, 0.0]], np.float32)
    dark = np.array([[1, 2], [3, 4]], np.float32)
    out = apply_gain_dark(frame, gain, dark)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[9, 9], [54, 0]])
    np.testing.assert_array_equal(frame, [[10, 20], [30, 40]])
    np.testing.assert_array_equal(apply_gain_dark(frame, gain=gain), [[10, 10], [60, 0]])
    np.testing.assert_array_equal(apply_gain_dark(frame, dark=dark), [[9, 18], [27, 36]])
    np.testing.assert_array_equal(apply_gain_dark(frame), frame)
    movie = np.stack([frame, frame])
    np.testing.assert_array_equal(apply_gain_dark(movie, gain, dark), [out, out])


def test_reference_notes():
    dead = G.copy()
    dead[0, :2] = 0
    notes = reference_notes(dead)
    assert len(notes) == 1 and notes[0].startswith("2 zero pixels")
    assert reference_notes(G) == []
    assert reference_notes(-G) == ["12 negative pixels: not a multiplicative gain?"]
    assert reference_notes(np.ones((3, 3))) == ["every pixel is 1: the reference corrects "
                                                "nothing"]
