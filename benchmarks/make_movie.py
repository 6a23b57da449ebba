"""Write a large simulated movie with a known CTF, drift and gain stripes (benchmark input).

Usage: python benchmarks/make_movie.py [OUT] [--frames 40] [--size 4096] [--format mrc|tiff]
       [--dtype float32|float16|uint16] [--compression zlib] [--pixel-size 1.0]
       [--dose 1.0] [--defocus-u 15000] [--defocus-v 14000] [--defocus-angle 30]
       [--drift 0.25,-0.15] [--stripes 0.05] [--contrast 0.25] [--bfactor 0]
       [--dark LEVEL] [--seed 0] [--workers N]

Writes, frame by frame (the movie is never held in memory; the largest arrays
are the specimen's canvas spectrum and a few frames):

* ``OUT`` (default ``movie.mrc``, or ``movie.tif`` with ``--format tiff``):
  ``recorded = counts / gain + dark`` per frame (``spectools.simulate.micrographs``);
* ``OUT_gain.mrc``: the gain reference, float32; ``(recorded - dark) * gain``
  gives the counts back (dark is 0 unless ``--dark``);
* ``OUT_truth.json``: CTF, shifts, dose, seed, every parameter.

Prints the CTF, the seconds taken and the peak RSS.  A 40-frame 4096x4096
float32 movie is 2.7 GB on disk.
"""
import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", help="movie file (default movie.mrc / movie.tif)")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", type=int, default=4096, help="frame side, pixels")
    parser.add_argument("--format", choices=("mrc", "tiff"), default="mrc")
    parser.add_argument("--dtype", choices=("float32", "float16", "uint16"), default="float32")
    parser.add_argument("--compression", default=None, help="TIFF compression, e.g. zlib")
    parser.add_argument("--pixel-size", type=float, default=1.0, help="A per pixel")
    parser.add_argument("--dose", type=float, default=1.0, help="electrons per A^2 per frame")
    parser.add_argument("--defocus-u", type=float, default=15000.0, help="A")
    parser.add_argument("--defocus-v", type=float, default=14000.0, help="A")
    parser.add_argument("--defocus-angle", type=float, default=30.0,
                        help="deg, from +x (columns) towards +y (rows)")
    parser.add_argument("--voltage", type=float, default=300.0, help="kV")
    parser.add_argument("--cs", type=float, default=2.7, help="mm")
    parser.add_argument("--amplitude-contrast", type=float, default=0.1)
    parser.add_argument("--phase-shift", type=float, default=0.0, help="deg")
    parser.add_argument("--bfactor", type=float, default=0.0, help="envelope B-factor, A^2")
    # 0.25 rather than the library's 0.1: at 1 e/A^2 per frame the rings then
    # show in spectra averaged over single frames, not only over frame sums.
    parser.add_argument("--contrast", type=float, default=0.25,
                        help="scale of the unit-variance specimen in the counts")
    parser.add_argument("--drift", default="0.25,-0.15", help="x,y pixels per frame")
    parser.add_argument("--stripes", type=float, default=0.05,
                        help="gain stripe amplitude (0: no gain applied)")
    parser.add_argument("--dark", type=float, default=None, help="constant dark level")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="FFT threads")
    return parser.parse_args(argv)


def main(argv=None):
    from spectools.simulate.micrographs import (gain_with_column_stripes, iter_movie_frames,
                                                write_movie)

    args = parse_args(sys.argv[1:] if argv is None else argv)
    out = Path(args.out or ("movie.tif" if args.format == "tiff" else "movie.mrc"))
    stem = out.with_suffix("")
    gain_path = stem.parent / f"{stem.name}_gain.mrc"
    truth_path = stem.parent / f"{stem.name}_truth.json"
    drift = tuple(float(v) for v in args.drift.split(","))
    ctf = {"defocus_u_a": args.defocus_u, "defocus_v_a": args.defocus_v,
           "defocus_angle_deg": args.defocus_angle, "voltage_kv": args.voltage,
           "cs_mm": args.cs, "amplitude_contrast": args.amplitude_contrast,
           "phase_shift_deg": args.phase_shift}
    gain_seed, movie_seed = np.random.SeedSequence(args.seed).spawn(2)
    shape = (args.size, args.size)

    start = time.perf_counter()
    gain = None
    if args.stripes > 0:
        gain = gain_with_column_stripes(shape, rng=np.random.default_rng(gain_seed),
                                        stripe_amplitude=args.stripes)
        write_movie(gain_path, [gain], args.pixel_size)
    truth = {}
    frames = iter_movie_frames(
        args.frames, shape, args.pixel_size, ctf, rng=np.random.default_rng(movie_seed),
        dose_per_a2_per_frame=args.dose, drift_px_per_frame=drift, gain=gain, dark=args.dark,
        dtype=np.dtype(args.dtype), contrast=args.contrast, envelope_bfactor_a2=args.bfactor,
        workers=args.workers, truth=truth)
    setup = time.perf_counter() - start
    write_movie(out, frames, args.pixel_size, fmt=args.format, compression=args.compression,
                n_frames=args.frames)
    seconds = time.perf_counter() - start

    truth.update(seed=args.seed, movie=str(out), gain_reference=str(gain_path) if gain is not None
                 else None, dark_level=args.dark, stripe_amplitude=args.stripes,
                 format=args.format, compression=args.compression)
    truth["shifts_px"] = np.asarray(truth["shifts_px"]).tolist()
    with open(truth_path, "w") as handle:
        json.dump(truth, handle, indent=1, default=list)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size_gb = out.stat().st_size / 1e9
    print(f"movie        {out} ({args.frames} x {args.size}x{args.size} {args.dtype}, "
          f"{args.format}, {size_gb:.2f} GB)")
    print(f"gain         {gain_path if gain is not None else 'none'} (stripes {args.stripes:g}); "
          f"recorded = counts / gain + dark, correct with (recorded - dark) * gain")
    print("ctf          " + ", ".join(f"{k}={v:g}" for k, v in ctf.items()))
    print(f"dose         {args.dose:g} e/A^2/frame, {args.dose * args.frames:g} e/A^2 total, "
          f"pixel {args.pixel_size:g} A")
    last = truth["shifts_px"][-1]
    print(f"drift        {drift[0]:g}, {drift[1]:g} px/frame (last frame at "
          f"{last[0]:.2f}, {last[1]:.2f} px)")
    print(f"truth        {truth_path}")
    print(f"seconds      {seconds:.1f} (setup {setup:.1f}, {(seconds - setup) / args.frames:.2f} "
          f"per frame, {args.workers} FFT threads)")
    print(f"peak RSS     {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
