"""Class averages by native class number, from a stack or a dict, checked against the segments.

cryoSPARC numbers classes from 0 and writes class k as frame k; RELION numbers
from 1 and writes class k as frame k (1-based), i.e. index k-1.  Either way
frame index = native class - class_base.
"""
from pathlib import Path

import numpy as np

from ..errors import SpectoolsError
from ..io.pixel_values import describe_unusable, unusable_images
from ..io.stacks import open_stack


def read_class_averages(path, table, box):
    """Class averages by native class number, from a stack.

    cryoSPARC numbers classes from 0 and writes class k as frame k; RELION
    numbers from 1 and writes class k as frame k (1-based), i.e. index k-1.
    Either way frame index = native class - class_base.
    """
    stack = open_stack(path)
    if stack.shape[-1] != box or stack.shape[-2] != box:
        raise SpectoolsError(f"class averages are {stack.shape[-1]}x{stack.shape[-2]} but the "
                             f"particles are {box}x{box}", path)
    out = {}
    for native in native_classes(table):
        index = native - table.class_base
        if 0 <= index < stack.shape[0]:
            out[native] = np.asarray(stack[index], np.float32)
            if unusable_images(out[native])[0]:
                raise SpectoolsError(f"class average {native} (image {index + 1}) "
                                     f"{describe_unusable(out[native])}", path)
    return out



def class_averages_of(class_averages, table, box):
    """Class averages of the selected classes (native class -> image), from a stack path or a dict."""
    if class_averages is None:
        return {}
    if isinstance(class_averages, (str, Path)):
        return read_class_averages(class_averages, table, box)
    used = set(native_classes(table))
    for native, image in class_averages.items():
        if np.shape(image) != (box, box):
            raise SpectoolsError(f"class average {native} is {np.shape(image)[-1]}x"
                                 f"{np.shape(image)[0]} but the particles are {box}x{box}")
    return {k: np.asarray(v, np.float32) for k, v in class_averages.items() if k in used}



def native_classes(table):
    if not table.has("class_number"):
        return []
    return sorted({int(k) for k in table.native_class(table.data["class_number"].unique())})
