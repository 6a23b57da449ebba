"""``spectools thon INPUT... -o OUTDIR``: Thon-ring spectra of micrographs and movies."""
import argparse
import json
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import SpectoolsError
from ..io.atomic import OutputSet, check_not_input
from ..io.mrc import MrcStackWriter
from ..ops.thon_rings import (
    METHODS,
    ctf_squared_centred,
    ctf_zeros,
    display_panel,
    resample_spectrum,
    rotational_average,
    subtracted_amplitude,
)
from ..pipelines.batches import progress
from ..pipelines.thon import thon_spectrum
from ..plots import contact_sheet, thon_png
from .common import positive_float, positive_int

HELP = "Thon-ring power spectra of micrographs and movies (MRC, TIFF, EER)"
DESCRIPTION = HELP + """.

Movies: the power spectra of single frames are summed (incoherent, so drift
between frames does not blur the rings). At low dose per frame a single
frame's rings drown in shot noise: --group K sums K frames coherently first,
as RELION and CTFFIND do. --frames 1: drops the first frame (where
gain-normalisation artefacts live). Gain (--gain, RELION's --gain-rot and
--gain-flip meanings) multiplies each frame after the dark is subtracted.

Spectra: Welch averaging over overlapping tapered tiles (default: 512 px, 50%
overlap; each tile's mean and plane removed) or CTFFIND's whole-image spectrum
smoothed by Fourier cropping (--method whole). Per input: NAME_ps.mrc (the
averaged spectrum, centred, float32), NAME_ps.png (background subtracted,
contrast from robust statistics in --min-res..--max-res, central cross and
spot suppressed, axes in 1/A; with a defocus the CTF^2 model in the right half
and the predicted zeros), NAME_profile.csv and NAME.json; with several inputs a
contact sheet.
"""


def add_parser(subparsers):
    parser = subparsers.add_parser("thon", help=HELP, description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="micrographs or movies: MRC, MRC stacks, TIFF (stacks), EER")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    parser.add_argument("--pixel-size", type=positive_float, metavar="A",
                        help="pixel size of the frames (default: from the header)")
    mov = parser.add_argument_group("movies and detector")
    mov.add_argument("--frames", metavar="A:B", help="frames to use, 0-based, B excluded")
    mov.add_argument("--group", type=positive_int, default=1, metavar="K",
                     help="sum K frames coherently before each spectrum (default 1)")
    mov.add_argument("--gain", metavar="FILE", help="gain reference (MRC or TIFF), multiplied")
    mov.add_argument("--gain-rot", type=int, choices=(0, 1, 2, 3), default=0,
                     help="RELION's --gain_rot: turns of 90 degrees clockwise in relion_display")
    mov.add_argument("--gain-flip", type=int, choices=(0, 1, 2), default=0,
                     help="RELION's --gain_flip: 1 upside down, 2 left to right")
    mov.add_argument("--dark", metavar="FILE", help="dark reference, subtracted")
    mov.add_argument("--hot-sigma", type=positive_float, metavar="S",
                     help="replace pixels further than S robust sigmas from the median of the "
                          "frame sum by their neighbours' mean")
    est = parser.add_argument_group("spectrum")
    est.add_argument("--method", choices=METHODS, default="welch")
    est.add_argument("--tile", type=positive_int, default=512, help="Welch tile (default 512)")
    est.add_argument("--overlap", type=float, default=0.5, help="Welch overlap (default 0.5)")
    est.add_argument("--target-apix", type=positive_float, metavar="A",
                     help="crop or pad the spectrum to this pixel size's Nyquist (e.g. 1.4, as "
                          "CTFFIND), so rings are not squeezed near the centre")
    est.add_argument("--box", type=positive_int, default=512,
                     help="output size in pixels (default 512)")
    disp = parser.add_argument_group("display and CTF model")
    disp.add_argument("--min-res", type=positive_float, default=30.0, metavar="A",
                      help="lowest resolution shown and used for contrast (default 30 A)")
    disp.add_argument("--max-res", type=positive_float, metavar="A",
                      help="highest resolution shown (default: Nyquist)")
    disp.add_argument("--defocus", type=positive_float, metavar="A",
                      help="draw the CTF^2 model and its zeros for this defocus (U)")
    disp.add_argument("--defocus-v", type=positive_float, metavar="A",
                      help="defocus V (default: as U)")
    disp.add_argument("--defocus-angle", type=float, default=0.0, metavar="DEG",
                      help="astigmatism angle, from +x towards +y (RELION's rlnDefocusAngle)")
    disp.add_argument("--ctf-from", metavar="FILE",
                      help="CTF values per micrograph from a STAR file (e.g. CTFFIND's "
                           "micrographs_ctf.star) or a cryoSPARC .cs, matched by file name")
    disp.add_argument("--voltage", type=positive_float, default=300.0, metavar="KV")
    disp.add_argument("--cs", type=float, default=2.7, metavar="MM")
    disp.add_argument("--amplitude-contrast", type=float, default=0.1, metavar="Q")
    parser.add_argument("--threads", type=positive_int, default=2, help="threads (default 2)")
    parser.set_defaults(run=run)
    return parser


def run(args):
    from ..io.frames import open_frames, read_reference
    from ..ops.detector import check_reference_shape, reference_notes, rotate_flip

    if not 0 <= args.overlap < 1:
        raise SpectoolsError("--overlap must be in [0, 1)")
    outdir = Path(args.output)
    inputs = [Path(p) for p in args.inputs]
    refs = [Path(p) for p in (args.gain, args.dark) if p]
    for path in inputs:
        check_not_input(outdir / f"{path.stem}_ps.mrc", inputs + refs)
    ctf = _ctf(args)
    table = None
    if args.ctf_from:
        from ..formats.micrograph_ctf import read_ctf_table
        table = read_ctf_table(args.ctf_from)
    panels, titles, written = [], [], []
    bar = progress(len(inputs), "micrographs", None)
    with OutputSet() as outputs:
        for path in inputs:
            with open_frames(path) as source:
                gain = dark = None
                notes = []
                for option, name in (("gain", "gain reference"), ("dark", "dark reference")):
                    ref_path = getattr(args, option)
                    if not ref_path:
                        continue
                    raw = read_reference(ref_path)
                    check_reference_shape(ref_path, raw, source.shape, rot=args.gain_rot,
                                          what=name)
                    turned = rotate_flip(raw, args.gain_rot, args.gain_flip)
                    notes += [f"{name}: {n}" for n in reference_notes(turned)]
                    gain, dark = (turned, dark) if option == "gain" else (gain, turned)
                result = thon_spectrum(source, frames=args.frames, group=args.group, gain=gain,
                                       dark=dark, hot_sigma=args.hot_sigma, method=args.method,
                                       tile=args.tile, overlap=args.overlap, box=args.box,
                                       pixel_size_a=args.pixel_size, workers=args.threads,
                                       show_progress=False)
            result.notes.extend(notes)
            this_ctf = ctf
            if table is not None:
                from ..formats.micrograph_ctf import match_ctf
                this_ctf = match_ctf(table, path) or ctf
                if this_ctf is None:
                    result.notes.append(f"no CTF for {path.name} in {args.ctf_from}")
            files = _write_one(outputs, outdir, path, result, args, this_ctf, panels, titles)
            written.extend(files)
            bar.update(1)
        if len(inputs) > 1:
            sheet = outdir / "contact_sheet.png"
            contact_sheet(outputs.path(sheet), panels, titles)
            written.append(str(sheet))
    bar.close()
    for path in written:
        print(f"  {path}")
    return 0


def _write_one(outputs, outdir, path, result, args, ctf, panels, titles):
    spectrum, pixel = resample_spectrum(result.spectrum, result.pixel_size_a, args.target_apix,
                                        args.box)
    stem = outdir / path.stem
    files = []

    def target(p):
        files.append(str(p))
        return outputs.path(p)

    with MrcStackWriter(target(Path(f"{stem}_ps.mrc")), 1, spectrum.shape, pixel,
                        label=f"spectools {__version__} Thon-ring power spectrum") as w:
        w.write(spectrum.astype(np.float32))
    freq, profile = rotational_average(spectrum, pixel, ctf)
    _, flat = rotational_average(subtracted_amplitude(spectrum), pixel, ctf)
    model, zeros = None, ()
    if ctf is not None:
        _, model = rotational_average(ctf_squared_centred(spectrum.shape[-1], pixel, ctf), pixel,
                                      ctf)
        band = (freq >= 1.0 / args.min_res) & np.isfinite(flat)
        if band.any():
            model = (model - model[band].mean()) / (model[band].std() or 1.0) * np.nanstd(
                flat[band]) + np.nanmean(flat[band])
        zeros = ctf_zeros(ctf, 0.5 / pixel)
    with open(target(Path(f"{stem}_profile.csv")), "w") as fh:
        fh.write("frequency_per_angstrom,power_average,background_subtracted_amplitude"
                 + (",ctf2_model" if model is not None else "") + "\n")
        for i, f in enumerate(freq):
            row = f"{f:.6f},{profile[i]:.6e},{flat[i]:.6e}"
            fh.write(row + (f",{model[i]:.6e}" if model is not None else "") + "\n")
    panel, extent = display_panel(spectrum, pixel, min_res_a=args.min_res,
                                  max_res_a=args.max_res, ctf=ctf)
    title = (f"{path.name}: {len(result.frames_used)} frame(s), {pixel:.3g} A/px"
             + (f", defocus {ctf['defocus_u_a']:.0f}/{ctf['defocus_v_a']:.0f} A" if ctf else ""))
    thon_png(target(Path(f"{stem}_ps.png")), panel, extent, frequency=freq, profile=profile,
             background_subtracted=flat, model=model, zeros=zeros, title=title)
    panels.append((panel, extent))
    titles.append(path.name)
    sidecar = {"program": f"spectools {__version__}", "command": "thon", "input": str(path),
               "frames_used": result.frames_used, "pixel_size_a": result.pixel_size_a,
               "spectrum_pixel_size_a": pixel, "notes": result.notes,
               "ctf_zeros_per_angstrom": list(map(float, zeros)),
               "layout": "centred full plane, zero frequency at index size//2; kx along "
                         "columns, ky along rows; white noise of variance v gives v",
               "parameters": {k: v for k, v in vars(args).items() if k != "run"}}
    with open(target(Path(f"{stem}.json")), "w") as fh:
        json.dump(sidecar, fh, indent=2, default=str)
    return files


def _ctf(args):
    if not args.defocus:
        return None
    return {"defocus_u_a": args.defocus, "defocus_v_a": args.defocus_v or args.defocus,
            "defocus_angle_deg": args.defocus_angle, "voltage_kv": args.voltage,
            "cs_mm": args.cs, "amplitude_contrast": args.amplitude_contrast}
