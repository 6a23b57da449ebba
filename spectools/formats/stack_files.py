"""Checking a particle table against the stacks it points at.

Reads only the stack headers: existence, number of images, box size and
header pixel size.  Used by ``spectools info`` (to report) and by every
command that needs the images (to stop before writing anything).
"""
import dataclasses
import os

import numpy as np
import pandas as pd

from ..errors import SpectoolsError
from ..io.pixel_size import header_pixel_size_a
from ..io.stacks import stack_header


@dataclasses.dataclass
class ReferenceReport:
    """What the stacks referenced by a table look like.

    Attributes
    ----------
    stacks : pandas.DataFrame
        One row per distinct stack path: ``path``, ``particles`` (rows that
        use it), ``max_index`` (largest 0-based index used), ``exists``,
        ``n_images``, ``ny``, ``nx``, ``header_pixel_size_a``, ``error``.
    """

    stacks: pd.DataFrame

    @property
    def missing(self):
        return self.stacks[~self.stacks["exists"]]

    @property
    def unreadable(self):
        return self.stacks[self.stacks["exists"] & (self.stacks["error"] != "")]

    @property
    def beyond(self):
        ok = self.stacks[self.stacks["exists"] & (self.stacks["error"] == "")]
        return ok[ok["max_index"] >= ok["n_images"]]

    def missing_summary(self, table):
        """One line about missing stacks (counts and examples), or None."""
        miss = self.missing
        if not len(miss):
            return None
        examples = ", ".join(miss["path"].head(3))
        return (f"{len(miss)} of {len(self.stacks)} referenced stacks are missing "
                f"({int(miss['particles'].sum())} of {len(table)} particles), e.g. {examples}")

    def problems(self, table):
        """One-line descriptions of what makes the found stacks unusable."""
        out = []
        for _, row in self.unreadable.iterrows():
            out.append(f"{row['path']}: {row['error']}")
        for _, row in self.beyond.iterrows():
            out.append(f"{row['path']}: particles use image {int(row['max_index']) + 1} but "
                       f"the stack has {int(row['n_images'])} images")
        found = self.stacks[self.stacks["exists"] & (self.stacks["error"] == "")]
        boxes = set(zip(found["ny"], found["nx"]))
        if any(ny != nx for ny, nx in boxes):
            out.append(f"non-square images in the stacks: {sorted(boxes)[:3]}")
        if len({nx for _, nx in boxes}) > 1:
            out.append(f"mixed box sizes in the stacks: {sorted({nx for _, nx in boxes})}")
        if "box_px" in table.data and len(found):
            meta = table.data.groupby("image_path")["box_px"].max()
            for _, row in found.iterrows():
                box = int(meta.get(row["path"], 0))
                if box > 0 and box != row["nx"]:
                    out.append(f"{row['path']}: metadata says box {box} but the stack "
                               f"holds {row['nx']}x{row['ny']} images")
                    break
        return out


def check_references(table):
    """Read the header of every stack the table uses; see :class:`ReferenceReport`."""
    d = table.data
    groups = d.groupby("image_path", sort=False)["image_index"].agg(["size", "max"])
    rows = []
    for path, (count, max_index) in groups.iterrows():
        row = {"path": path, "particles": int(count), "max_index": int(max_index),
               "exists": False, "n_images": 0, "ny": 0, "nx": 0, "header_pixel_size_a": 0.0,
               "error": ""}
        try:
            header = stack_header(path)
            row.update(exists=True, n_images=header.n, ny=header.ny, nx=header.nx,
                       header_pixel_size_a=header.pixel_size_a)
        except FileNotFoundError:
            pass
        except SpectoolsError as exc:
            row["exists"] = os.path.exists(path)
            row["error"] = exc.reason if row["exists"] else ""
        rows.append(row)
    columns = ["path", "particles", "max_index", "exists", "n_images", "ny", "nx",
               "header_pixel_size_a", "error"]
    return ReferenceReport(pd.DataFrame(rows, columns=columns))


def fill_from_stacks(table, report):
    """Fill unknown box sizes and pixel sizes from the stack headers, in place.

    A header pixel size of 0 or 1 means "unset" (many programs write 1) and
    is never used (:func:`~spectools.io.pixel_size.header_pixel_size_a`).
    Returns the list of assumptions made.
    """
    d = table.data
    found = report.stacks[report.stacks["exists"] & (report.stacks["error"] == "")]
    notes = []
    if not len(found):
        return notes
    nx = d["image_path"].map(dict(zip(found["path"], found["nx"])))
    if "box_px" not in d:
        d["box_px"] = 0
    unknown_box = (d["box_px"] <= 0) & nx.notna()
    if unknown_box.any():
        d.loc[unknown_box, "box_px"] = nx[unknown_box].astype(np.int64)
        notes.append("box size taken from the stack headers")
    header_psize = d["image_path"].map(dict(zip(
        found["path"], found["header_pixel_size_a"].map(header_pixel_size_a))))
    usable = header_psize.notna() & (header_psize > 0)
    if "pixel_size_a" not in d:
        d["pixel_size_a"] = np.nan
    unknown_psize = d["pixel_size_a"].isna() & usable
    if unknown_psize.any():
        d.loc[unknown_psize, "pixel_size_a"] = header_psize[unknown_psize]
        notes.append("pixel size taken from the stack headers")
    table.assumptions.extend(notes)
    return notes
