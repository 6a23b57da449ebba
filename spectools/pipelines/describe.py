"""What a metadata file holds and whether its stacks exist (``spectools info``).

Reads only the metadata and the stack headers.  :func:`describe_input` gives a
JSON-ready dict of a file (:func:`summarize` of a particle table, or what a
cryoSPARC dataset without particle images holds), :func:`format_summary` the
text users read.
"""
import numpy as np

from ..formats import cryosparc, detect_format
from ..formats.stack_files import check_references
from ..io.csfile import cs_field_names
from ..io.files import regular_file
from ..ops.geometry import angle_grid
from ..particles import COLUMNS, class_populations
from .inputs import ReadOptions, read_input

#: What ``info`` says of a cryoSPARC dataset whose images are elsewhere.
IMAGES_ELSEWHERE = ("in the passthrough file: this file has no blob/ fields (read it together "
                    "with the job's *_passthrough_particles.cs)")


def describe_input(path, options: ReadOptions = ReadOptions()):
    """A JSON-ready description of a metadata file (see :func:`summarize`).

    A cryoSPARC dataset without ``blob/`` fields (an alignment-only job output
    whose images live in the passthrough file) is described by its fields
    instead of being refused.
    """
    regular_file(path)
    if detect_format(path) == "cryosparc":
        names = set(cs_field_names(path) or ())
        if options.passthrough:
            names |= set(cs_field_names(options.passthrough) or ())
        if names and not cryosparc.has_images(names):
            return _summarize_dataset(cryosparc.read_dataset(path, options.passthrough), path)
    return summarize(read_input(path, options))


def _summarize_dataset(cs, path):
    out = cryosparc.describe_dataset(cs, path)
    groups = out["alignment_groups"]
    main = next((groups[g] for g in ("alignments2D", "alignments3D") if g in groups), None)
    out.update({"format": "cryosparc", "images": IMAGES_ELSEWHERE,
                "detail": f"cryoSPARC dataset, {out['fields']} fields, no particle images",
                "class_numbering": "from 0 (cryoSPARC style)",
                "classes": main["classes"] if main else {}, "assumptions": []})
    return out


def summarize(table):
    """A JSON-ready dict describing ``table`` and its stacks."""
    d = table.data
    out = {"file": table.source, "format": table.source_format, "detail": table.format_detail,
           "particles": len(table)}
    out["pixel_sizes_a"] = _unique(d, "pixel_size_a")
    out["box_sizes_px"] = [int(b) for b in _unique(d, "box_px") if b > 0]
    out["alignment_2d"] = table.has_alignment_2d
    out["angles_3d"] = table.has("rot_deg", "tilt_deg")
    out["filament_angles"] = table.has("psi_prior_deg")
    out["mirrored"] = int(d["mirror"].sum()) if "mirror" in d else 0
    out["psi_grid"] = (angle_grid(d["psi_deg"].to_numpy(float))
                       if table.has_alignment_2d else None)
    pops = class_populations(table)
    out["class_numbering"] = (f"from {table.class_base} ("
                              f"{'cryoSPARC' if table.class_base == 0 else 'RELION/SPIDER'} style)")
    out["classes"] = {str(int(k)): int(v) for k, v in pops.items()}
    post = d["class_posterior"].to_numpy(float) if "class_posterior" in d else np.array([])
    post = post[np.isfinite(post)]
    if len(post):
        out["class_posterior"] = {"min": float(post.min()), "median": float(np.median(post))}
    if "helical_tube_id" in d:
        key = ["micrograph_name", "helical_tube_id"] if "micrograph_name" in d else \
            ["helical_tube_id"]
        out["helical_tubes"] = int(d[key].drop_duplicates().shape[0])
    ctf = {}
    for col in ("voltage_kv", "cs_mm", "amplitude_contrast"):
        if col in d:
            ctf[col] = _unique(d, col)
    defocus = [c for c in ("defocus_u_a", "defocus_v_a") if c in d]
    values = d[defocus].to_numpy(float) if defocus and len(d) else np.array([])
    values = values[np.isfinite(values)]
    if len(values):
        ctf["defocus_range_a"] = [float(values.min()), float(values.max())]
    out["ctf"] = ctf
    if "optics_group" in d:
        out["optics_groups"] = int(d["optics_group"].nunique())
    out["fields"] = [c for c in COLUMNS if c in d]
    out["passthrough_fields"] = table.passthrough_columns
    report = check_references(table)
    stacks = report.stacks
    out["stacks"] = {"referenced": int(len(stacks)), "found": int(stacks["exists"].sum()),
                     "unreadable": int(len(report.unreadable)),
                     "missing": int((~stacks["exists"]).sum()),
                     "missing_particles": int(stacks.loc[~stacks["exists"], "particles"].sum()),
                     "missing_examples": list(stacks.loc[~stacks["exists"], "path"].head(3)),
                     "box_sizes_px": sorted({int(x) for x in stacks.loc[stacks["exists"], "nx"]
                                             if x > 0}),
                     "problems": report.problems(table)}
    out["assumptions"] = list(table.assumptions)
    return out


def format_summary(s):
    """Human-readable text of :func:`summarize`'s (or :func:`describe_input`'s) output."""
    if "images" in s:
        return _format_dataset(s)
    lines = [f"{s['file']}", f"  format       {s['detail']}", f"  particles    {s['particles']}"]
    lines.append(f"  pixel size   {_list(s['pixel_sizes_a'], ' A') or 'unknown'}")
    boxes = s["box_sizes_px"] or s["stacks"]["box_sizes_px"]
    lines.append(f"  box          {_list(boxes, ' px') or 'unknown'}")
    align = []
    if s["alignment_2d"]:
        align.append("in-plane (psi, origin)")
    if s["angles_3d"]:
        align.append("3D angles (rot, tilt)")
    if s["mirrored"]:
        align.append(f"{s['mirrored']} mirrored")
    if s.get("filament_angles"):
        align.append("filament angles (psi prior" + (": the averaged spectrum can turn "
                                                     "the segments by them)" if not
                                                     s["alignment_2d"] else ")"))
    lines.append(f"  alignment    {', '.join(align) or 'none'}")
    grid = s.get("psi_grid")
    if grid:
        step = f"a {grid['step_deg']:g} deg grid" if grid["step_deg"] else "no common step"
        lines.append(f"  psi grid     {grid['distinct']} distinct angles ({step}): camera-raster "
                     "lines would become radial streaks in averaged spectra")
    lines.append(_classes_line(s))
    if "class_posterior" in s and s["class_posterior"]["min"] is not None:
        p = s["class_posterior"]
        lines.append(f"  posterior    min {p['min']:.3g}, median {p['median']:.3g}")
    if "helical_tubes" in s:
        lines.append(f"  helical      {s['helical_tubes']} filaments")
    if s["ctf"]:
        c = s["ctf"]
        parts = []
        if "defocus_range_a" in c:
            parts.append(f"defocus {c['defocus_range_a'][0]:.0f}-{c['defocus_range_a'][1]:.0f} A")
        for col, unit in (("voltage_kv", " kV"), ("cs_mm", " mm Cs"),
                          ("amplitude_contrast", " amplitude contrast")):
            if col in c and c[col]:
                parts.append(_list(c[col], unit))
        if parts:
            lines.append(f"  CTF          {', '.join(parts)}")
    if s.get("optics_groups"):
        lines.append(f"  optics       {s['optics_groups']} group(s)")
    lines.append(f"  fields       {', '.join(s['fields'])}")
    if s["passthrough_fields"]:
        pt = s["passthrough_fields"]
        lines.append(f"  passthrough  {len(pt)}: {', '.join(pt[:12])}"
                     f"{', ...' if len(pt) > 12 else ''}")
    st = s["stacks"]
    lines.append(f"  stacks       {st['referenced']} referenced, {st['found']} found"
                 + (f" ({st['unreadable']} unreadable: see below)" if st["unreadable"] else "")
                 + f", {st['missing']} missing"
                 + (f" ({st['missing_particles']} particles; e.g. "
                    f"{', '.join(st['missing_examples'])})" if st["missing"] else ""))
    for problem in st["problems"]:
        lines.append(f"  PROBLEM      {problem}")
    for note in s["assumptions"]:
        lines.append(f"  assumed      {note}")
    return "\n".join(lines)


def _format_dataset(s):
    """Text of a cryoSPARC dataset without images."""
    lines = [f"{s['file']}", f"  format       {s['detail']}", f"  particles    {s['particles']}",
             f"  images       {s['images']}"]
    if s["pixel_sizes_a"]:
        lines.append(f"  pixel size   {_list(s['pixel_sizes_a'], ' A')} (of the alignments)")
    kinds = [f"{g} ({a['kind']})" for g, a in s["alignment_groups"].items()]
    lines.append(f"  alignment    {', '.join(kinds) or 'none'}")
    lines.append(_classes_line(s))
    groups = ", ".join(f"{g} ({n})" for g, n in s["field_groups"].items())
    lines.append(f"  fields       {s['fields']} in groups {groups}")
    return "\n".join(lines)


def _classes_line(s):
    if not s["classes"]:
        return "  classes      none"
    pops = ", ".join(f"{k}: {v}" for k, v in s["classes"].items())
    return (f"  classes      {len(s['classes'])}, numbered {s['class_numbering']}; "
            f"particles per class: {pops}")


def _unique(d, col, limit=8):
    if col not in d:
        return []
    values = d[col].to_numpy(float)
    values = values[np.isfinite(values)]
    return [float(round(v, 6)) for v in np.unique(values)[:limit]]


def _list(values, unit):
    if not values:
        return ""
    return ", ".join(f"{v:g}" for v in values) + unit
