"""``spectools avgps INPUT -o OUT.mrc``: averaged power spectrum of aligned helical segments."""
import argparse
from pathlib import Path

import numpy as np

from ..errors import SpectoolsError
from ..io.atomic import check_not_input
from ..io.stacks import open_stack
from ..ops.axis import axis_angle_from_image
from ..ops.layer_lines import layer_lines
from ..ops.masks import MASKS
from ..ops.resample import INTERPOLATIONS
from ..pipelines.avgps import averaged_power_spectrum, write_outputs
from ..pipelines.inputs import checked_table
from ..pipelines.selfcheck import class_average_correlations, summarize_check
from .common import (
    add_reading_options,
    add_selection_options,
    apply_selection,
    input_files,
    key_values,
    positive_float,
    positive_int,
    read_input,
)

HELP = "averaged power spectrum of aligned helical segments, per class and combined"
DESCRIPTION = HELP + """.

Each segment is brought into its class frame (psi, and the origins so corners
fall where RELION's would) by one exact Fourier resampling, with the class's
helical axis turned horizontal; masked with a soft tube along the axis (or a
circle); scaled to zero mean and unit variance inside the mask; zero padded;
and its |FFT|^2 added to its class. No angle binning: no streaks, no
discrete-angle artefacts.

Output: OUT.mrc, the mean spectrum as a full, centred plane (zero frequency
at index N//2, numpy.fft.fftshift layout), float32, voxel size = the
segments' real-space pixel size, helical axis vertical (layer lines
horizontal) unless --axis horizontal; white noise gives 1. Options add PNGs,
a layer-line profile, a layer-line overlay, per-class spectra and a check of
the alignment convention against the class averages; OUT.json records
everything.
"""


def add_parser(subparsers):
    parser = subparsers.add_parser("avgps", help=HELP, description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="RELION .star, cryoSPARC .cs or SPIDER doc (with --stack)")
    parser.add_argument("-o", "--output", required=True, help="output spectrum (.mrc)")
    spec = parser.add_argument_group("spectrum")
    spec.add_argument("--mask", choices=MASKS, default="tube",
                      help="soft mask in the class frame (default: tube)")
    spec.add_argument("--tube-diameter", type=positive_float, metavar="A",
                      help="width of the tube mask in Angstrom (default: 60%% of the box)")
    spec.add_argument("--pad", type=positive_int, default=2,
                      help="zero padding factor (default 2: finer sampling of the spectrum)")
    spec.add_argument("--no-normalize", action="store_true",
                      help="no per-segment normalisation; spectra as |FFT/N^2|^2, like "
                           "relion_image_handler --avg_ampl2_ali")
    spec.add_argument("--axis", choices=("vertical", "horizontal"), default="vertical",
                      help="helical axis of the output: vertical (layer lines horizontal; HILL, "
                           "EMAN2, Bsoft; default) or horizontal (RELION's frame)")
    spec.add_argument("--axis-angle", default="auto", type=_axis_angle, metavar="auto|DEG",
                      help="angle of the helical axis in the class frame (from +x towards +y); "
                           "auto (default) measures it per class, from the class average when "
                           "given, else from the class's averaged spectrum")
    spec.add_argument("--ctf", choices=("none", "wiener"), default="none",
                      help="none (default: the spectrum users compare across tools) or wiener: "
                           "divide by the mean CTF^2 of the segments (each turned into the class "
                           "frame) plus --wiener-constant, flattening Thon rings under the layer "
                           "lines")
    spec.add_argument("--wiener-constant", type=positive_float, default=0.1, metavar="C",
                      help="added to the mean CTF^2 before dividing (default 0.1)")
    spec.add_argument("--interpolation", choices=INTERPOLATIONS, default="fourier",
                      help="kernel of the image rotation (default: fourier, exact)")
    out = parser.add_argument_group("outputs")
    out.add_argument("--per-class", action="store_true",
                     help="also write OUT_classes.mrcs, one spectrum per class")
    out.add_argument("--png", action="store_true",
                     help="write OUT.png: log scale, robust contrast, axes in 1/A")
    out.add_argument("--profile", action="store_true",
                     help="write the layer-line profile OUT_profile.csv and .png")
    out.add_argument("--overlay", type=_overlay, metavar="SPEC",
                     help="draw predicted layer lines on the PNGs: "
                          "'twist=DEG,rise=A,csym=N,diameter=A' (csym, diameter optional)")
    out.add_argument("--resolution-marks", type=_floats, default=(), metavar="A,A,...",
                     help="resolutions drawn as circles on the PNGs, e.g. '10,4.7'")
    chk = parser.add_argument_group("checks")
    chk.add_argument("--class-averages", metavar="FILE",
                     help="class averages (cryoSPARC *_class_averages.mrc, RELION "
                          "*_classes.mrcs): measure axis angles from them and check the "
                          "alignment convention against them")
    parser.add_argument("--skip-missing", action="store_true",
                        help="leave out segments whose stacks are missing instead of stopping")
    parser.add_argument("--threads", type=positive_int, default=2, help="threads (default 2)")
    add_reading_options(parser)
    add_selection_options(parser)
    parser.set_defaults(run=run)
    return parser


def run(args):
    inputs = input_files(args) + ([args.class_averages] if args.class_averages else [])
    output = Path(args.output)
    if output.suffix.lower() not in (".mrc", ".map"):
        raise SpectoolsError("the averaged spectrum is written as .mrc", output)
    check_not_input(output, inputs)
    table = apply_selection(read_input(args), args)
    table, box, notes = checked_table(table, skip_missing=args.skip_missing)
    for note in notes:
        print(note)
    psize = float(table.data["pixel_size_a"].to_numpy(float)[0])
    if not np.isfinite(psize) or psize <= 0:
        raise SpectoolsError("pixel size unknown; give --pixel-size", args.input)
    diameter_px = None
    if args.mask == "tube":
        diameter_px = (args.tube_diameter / psize) if args.tube_diameter else 0.6 * box
        if args.tube_diameter is None:
            print(f"tube mask {diameter_px * psize:.0f} A wide (60% of the box); set it with "
                  "--tube-diameter")

    extra = {}
    class_average_angles = None
    if args.class_averages:
        averages = _read_class_averages(args.class_averages, table, box)
        scores = class_average_correlations(table, averages)
        best, verdict = summarize_check(scores)
        print(f"alignment check: {verdict}")
        extra["alignment_check"] = {"correlations": {str(k): v for k, v in scores.items()},
                                    "best": best, "verdict": verdict}
        if args.axis_angle == "auto":
            class_average_angles = {k: axis_angle_from_image(img) for k, img in averages.items()}

    result = averaged_power_spectrum(
        table, mask=args.mask, tube_diameter_px=diameter_px, pad=args.pad,
        normalize=not args.no_normalize, axis=args.axis, axis_angle=args.axis_angle,
        class_average_angles=class_average_angles, interpolation=args.interpolation,
        ctf=args.ctf, wiener_constant=args.wiener_constant, workers=args.threads)
    overlay = None
    if args.overlay:
        overlay = layer_lines(args.overlay["twist"], args.overlay["rise"],
                              int(args.overlay.get("csym", 1)), args.overlay.get("diameter"),
                              max_frequency=0.5 / psize)
    files = write_outputs(result, output, table=table, per_class=args.per_class, png=args.png,
                          profile=args.profile, overlay=overlay,
                          resolution_marks=args.resolution_marks, axis=args.axis,
                          parameters={k: v for k, v in vars(args).items() if k != "run"},
                          extra=extra)
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(result.counts.items()))
    print(f"averaged {sum(result.counts.values())} segments (per class {counts}); "
          f"{result.padded}x{result.padded} spectrum at {psize:g} A/px")
    for k, info in sorted(result.axis_angles.items()):
        print(f"  class {k}: helical axis at {info['angle_deg']:.2f} deg ({info['from']})")
    for path in files:
        print(f"  {path}")
    for note in result.notes:
        print(f"  note: {note}")
    for note in table.assumptions:
        print(f"  assumed: {note}")
    return 0


def _read_class_averages(path, table, box):
    """Class averages by native class number.

    cryoSPARC numbers classes from 0 and writes class k as frame k; RELION
    numbers from 1 and writes class k as frame k (1-based), i.e. index k-1.
    Either way frame index = native class - class_base.
    """
    stack = open_stack(path)
    if stack.shape[-1] != box or stack.shape[-2] != box:
        raise SpectoolsError(f"class averages are {stack.shape[-1]}x{stack.shape[-2]} but the "
                             f"particles are {box}x{box}", path)
    natives = sorted({int(k) for k in table.native_class(table.data["class_number"].unique())})
    out = {}
    for native in natives:
        index = native - table.class_base
        if 0 <= index < stack.shape[0]:
            out[native] = np.asarray(stack[index], np.float32)
    return out


def _axis_angle(text):
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not 'auto' or an angle in degrees: {text!r}")


def _floats(text):
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}")
    if any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("resolutions must be positive")
    return values


def _overlay(text):
    values = key_values(text, ("twist", "rise", "csym", "diameter"), "overlay")
    if "twist" not in values or "rise" not in values:
        raise argparse.ArgumentTypeError("overlay needs at least twist= and rise=")
    if values["rise"] <= 0 or values.get("diameter", 1) <= 0 or values.get("csym", 1) < 1:
        raise argparse.ArgumentTypeError("overlay rise and diameter must be positive, csym >= 1")
    return values
