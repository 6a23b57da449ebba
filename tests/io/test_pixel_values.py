"""Pixel values no image holds are found per batch, whatever their position."""
import numpy as np

from spectools.io.pixel_values import MAX_PIXEL, describe_unusable, unusable_images


def test_every_kind_of_bad_value_anywhere_is_found():
    images = np.random.default_rng(0).normal(size=(6, 16, 16)).astype(np.float32)
    images[1, 15, 15] = np.nan      # the last pixel: a check of the first rows misses it
    images[2, 0, 0] = -np.inf
    images[3, 7, 3] = 3e38
    images[4, 9, 9] = -2 * MAX_PIXEL
    images[5] *= 1e5                # large but possible
    assert unusable_images(images).tolist() == [False, True, True, True, True, False]
    assert unusable_images(images[1, :8]).tolist() == [False]
    assert describe_unusable(images[1]) == "contains NaN or infinite values (1 pixel)"
    assert describe_unusable(images[3]) == ("has values up to 3e+38, beyond ±1e+09 "
                                            "(corrupted data?)")
