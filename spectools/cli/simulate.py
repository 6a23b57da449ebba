"""``spectools simulate``: helical segments with exact ground truth.

Writes raw segment stacks, the same segments in the class frame
(``canonical.mrcs``), RELION / cryoSPARC / SPIDER metadata and
``truth.json``; see :func:`spectools.simulate.simulate_dataset`.

Defaults: pixel size 2 Å (Nyquist 4 Å) and box 256 (512 Å), a helix with
rise 15 Å, twist 50° (7.2 subunits per turn, pitch 108 Å), radius 45 Å and
Gaussian subunits of sigma 4 Å (2 pixels, so they do not alias).  Its
meridional layer line at 1/15 Å⁻¹ lies well inside Nyquist and is still
visible through the subunits' Gaussian envelope (a wider subunit would erase
it: the envelope falls as exp(-2π²σ²s²)); the pitch is below the box length
even at box 128, so the 1/pitch layer lines are resolved.
"""
import json

from ..simulate.dataset import simulate_dataset
from ..simulate.segments import CTF, Helix
from ..pipelines.parsing import (parse_float, parse_key_values, parse_positive_float,
                                 parse_positive_int)
from .common import cli_type

positive_float = cli_type(parse_positive_float)
positive_int = cli_type(parse_positive_int)
finite_float = cli_type(parse_float)

HELP = "simulate helical segments with known alignments (a test bed with exact ground truth)"

#: Defaults of the single-class options (also the defaults of --helix keys).
DEFAULT_HELIX = {"rise": 15.0, "twist": 50.0, "radius": 45.0, "csym": 1, "sigma": 4.0,
                 "axis": 0.0}
HELIX_KEYS = {"rise": "rise_a", "twist": "twist_deg", "radius": "radius_a", "csym": "csym",
              "sigma": "subunit_sigma_a", "axis": "axis_angle_deg"}


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "simulate", help=HELP, description=HELP + ".",
        epilog="The helical axis lies along x (RELION's frame) unless 'axis=' says otherwise. "
               "Subunit peaks are 1; --noise is the noise standard deviation in those units.")
    parser.add_argument("-o", "--output", required=True, metavar="FOLDER",
                        help="output folder (created when missing)")
    helix = parser.add_argument_group("helix (one class)")
    helix.add_argument("--rise", type=positive_float, default=DEFAULT_HELIX["rise"],
                       metavar="A", help="helical rise in Angstrom (default %(default)s)")
    helix.add_argument("--twist", type=finite_float, default=DEFAULT_HELIX["twist"], metavar="DEG",
                       help="helical twist in degrees, positive = right-handed "
                            "(default %(default)s)")
    helix.add_argument("--radius", type=finite_float, default=DEFAULT_HELIX["radius"], metavar="A",
                       help="radius of the subunit centres in Angstrom (default %(default)s)")
    helix.add_argument("--csym", type=positive_int, default=DEFAULT_HELIX["csym"], metavar="N",
                       help="cyclic symmetry: subunits per ring (default %(default)s)")
    helix.add_argument("--sigma", type=positive_float, default=DEFAULT_HELIX["sigma"],
                       metavar="A", help="Gaussian subunit sigma in Angstrom "
                                         "(default %(default)s)")
    helix.add_argument("--helix", action="append", type=cli_type(_helix_spec, "helix"),
                       metavar="SPEC",
                       help="one class per --helix (repeatable), e.g. 'rise=20,twist=-40,"
                            "radius=50,csym=2,sigma=5,axis=0'; keys left out take the values "
                            "of the single-class options")
    data = parser.add_argument_group("segments")
    data.add_argument("--n", type=positive_int, default=200, metavar="N",
                      help="segments per class (default %(default)s)")
    data.add_argument("--box", type=positive_int, default=256, metavar="PX",
                      help="box size in pixels, at least 16 (default %(default)s)")
    data.add_argument("--pixel-size", type=positive_float, default=2.0, metavar="A",
                      help="pixel size in Angstrom (default %(default)s)")
    data.add_argument("--noise", type=finite_float, default=0.5, metavar="SIGMA",
                      help="standard deviation of the white noise added to the raw segments "
                           "(default %(default)s; 0 = none)")
    data.add_argument("--shift-sigma", type=finite_float, default=3.0, metavar="PX",
                      help="spread of the origins in pixels, clipped to box/4 "
                           "(default %(default)s)")
    data.add_argument("--mirror-fraction", type=finite_float, default=0.0, metavar="F",
                      help="fraction of mirrored segments; only a SPIDER doc can describe "
                           "them, so all segments must fit in one stack (default 0)")
    data.add_argument("--psi-step", type=positive_float, metavar="DEG",
                      help="psi on a grid of this step, in the images and the metadata, as "
                           "2D classification stores it (default: continuous)")
    data.add_argument("--column-offsets", type=finite_float, default=0.0, metavar="SIGMA",
                      help="camera raster: an offset per detector column, fixed for each raw "
                           "stack, of this standard deviation (noise units; default 0)")
    data.add_argument("--row-offsets", type=finite_float, default=0.0, metavar="SIGMA",
                      help="the same per detector row (default 0)")
    data.add_argument("--defocus", type=positive_float, metavar="A",
                      help="apply a CTF with this mean defocus (300 kV, Cs 2.7 mm, amplitude "
                           "contrast 0.1)")
    data.add_argument("--astigmatism", type=finite_float, default=500.0, metavar="A",
                      help="defocus U - V of that CTF in Angstrom (default %(default)s)")
    data.add_argument("--defocus-angle", type=finite_float, default=30.0, metavar="DEG",
                      help="astigmatism angle in the raw images (default %(default)s)")
    data.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    data.add_argument("--stack-size", type=positive_int, default=200, metavar="N",
                      help="images per raw stack; a SPIDER doc is written only when all "
                           "segments fit in one (default %(default)s)")
    parser.set_defaults(run=run)
    return parser


def _helix_spec(text):
    """Parse ``'rise=20,twist=-40,...'`` into a dict of the given keys."""
    return parse_key_values(text, tuple(HELIX_KEYS), "helix")


def build_helices(args):
    """One :class:`Helix` per class from the options."""
    single = {"rise": args.rise, "twist": args.twist, "radius": args.radius,
              "csym": args.csym, "sigma": args.sigma, "axis": 0.0}
    specs = args.helix or [{}]
    return [Helix(**{HELIX_KEYS[k]: {**single, **spec}[k] for k in HELIX_KEYS})
            for spec in specs]


def run(args):
    helices = build_helices(args)
    ctf = None
    if args.defocus is not None:
        ctf = CTF(defocus_u_a=args.defocus + args.astigmatism / 2,
                  defocus_v_a=args.defocus - args.astigmatism / 2,
                  defocus_angle_deg=args.defocus_angle)
    table, paths = simulate_dataset(
        args.output, helices, args.n, args.box, args.pixel_size, seed=args.seed,
        noise_sigma=args.noise, shift_sigma_px=args.shift_sigma, ctf=ctf,
        stack_size=args.stack_size, mirror_fraction=args.mirror_fraction,
        psi_step_deg=args.psi_step, column_offsets_sigma=args.column_offsets,
        row_offsets_sigma=args.row_offsets)
    folder = paths["truth"].parent
    print(f"wrote {len(table)} segments ({len(helices)} class{'es' * (len(helices) > 1)}, "
          f"box {args.box}, {args.pixel_size:g} A/px) to {folder}")
    for i, h in enumerate(helices, 1):
        print(f"  class {i}: rise {h.rise_a:g} A, twist {h.twist_deg:g} deg, pitch "
              f"{h.pitch_a:.4g} A, radius {h.radius_a:g} A, C{h.csym}, sigma "
              f"{h.subunit_sigma_a:g} A, axis {h.axis_angle_deg:g} deg")
    stacks = paths["stacks"]
    print(f"  raw stacks     {stacks[0].name}" + (f" .. {stacks[-1].name} ({len(stacks)})"
                                                   if len(stacks) > 1 else ""))
    print(f"  class frame    {paths['canonical'].name} (noise- and CTF-free, table order)")
    for key, label in (("relion", "RELION 3.1"), ("cryosparc", "cryoSPARC"),
                       ("spider", "SPIDER doc")):
        if key in paths:
            print(f"  {label:14s} {paths[key].name}")
    print(f"  ground truth   {paths['truth'].name}")
    for note in json.loads(paths["truth"].read_text())["notes"]:
        print(f"  note: {note}")
    return 0
