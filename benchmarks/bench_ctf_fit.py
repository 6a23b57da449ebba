"""Accuracy and speed of ``spectools thon``'s CTF estimation on simulated data.

Usage:
    python benchmarks/bench_ctf_fit.py accuracy [SIZE] [SEED]   (default 2048, 0)
    python benchmarks/bench_ctf_fit.py speed [SIZE]             (default 4096)

accuracy
    Micrographs (SIZE², 1 Å/px, 40 e/Å², the simulator's contrast 0.1 and an
    envelope B-factor of 60 Å²) at 200 and 300 kV, mean defocus 5,000 to
    40,000 Å, astigmatism 0, 500 and 2,000 Å at random angles; movies of 10
    frames with the same dose, with and without drift (1 px per frame);
    phase-plate micrographs with random phase shifts.  Each goes through
    ``run_thon`` (as ``spectools thon`` with no defocus given) and the table
    gives the errors against the issue's tolerances: mean defocus within 1%,
    astigmatism within 100 Å or 10%, angle within 5° where the astigmatism is
    at least 500 Å.
speed
    One SIZE² micrograph (1 Å/px): ``spectools thon`` with the defocus given
    (no fit) and without (fit), each in a fresh process, and ``fit_ctf``
    alone on the fit spectrum, best of three.
"""
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from measure import fresh


def _cases(rng):
    """(label, CTF, frames, drift, phase plate) of the accuracy table."""
    from spectools.ops.ctf import CTF

    out = []
    for kv in (200.0, 300.0):
        for mean in (5000.0, 15000.0, 25000.0, 40000.0):
            for astig in (0.0, 500.0, 2000.0):
                angle = float(rng.uniform(-90, 90))
                out.append(("micrograph", CTF(mean + astig / 2, mean - astig / 2, angle, kv),
                            1, (0.0, 0.0), False))
    for kv, mean, astig in ((300.0, 12000.0, 1000.0), (200.0, 30000.0, 500.0)):
        for drift in ((0.0, 0.0), (0.8, -0.6)):
            angle = float(rng.uniform(-90, 90))
            out.append(("movie" + (", drift" if drift[0] else ""),
                        CTF(mean + astig / 2, mean - astig / 2, angle, kv), 10, drift, False))
    for kv, mean, astig in ((300.0, 6000.0, 300.0), (300.0, 10000.0, 800.0),
                            (200.0, 8000.0, 1500.0), (300.0, 20000.0, 0.0)):
        angle, phase = float(rng.uniform(-90, 90)), float(rng.uniform(20, 160))
        out.append(("phase plate", CTF(mean + astig / 2, mean - astig / 2, angle, kv,
                                       phase_shift_deg=phase), 1, (0.0, 0.0), True))
    return out


def _simulate(path, ctf, frames, drift, size, seed):
    from spectools.simulate.micrographs import (iter_movie_frames, simulate_micrograph,
                                                write_movie)

    if frames == 1:
        image = simulate_micrograph((size, size), 1.0, ctf, rng=seed, dose_per_a2=40.0,
                                    envelope_bfactor_a2=60.0, workers=2)
        write_movie(path, image[None], 1.0)
    else:
        write_movie(path, iter_movie_frames(frames, (size, size), 1.0, ctf, rng=seed,
                                            dose_per_a2_per_frame=40.0 / frames,
                                            drift_px_per_frame=drift,
                                            envelope_bfactor_a2=60.0, workers=2),
                    1.0, n_frames=frames)


def accuracy(size, seed):
    from spectools.pipelines.thon import ThonOptions, run_thon

    rng = np.random.default_rng(seed)
    print(f"{size}x{size} px at 1 A/px, 40 e/A^2, contrast 0.1, envelope B 60 A^2, "
          f"Welch tiles 512 (fit: CTFFIND's 1.4 A sampling)")
    print(f"{'input':20s} {'kV':>4s} {'mean A':>7s} {'astig':>6s} {'angle':>6s} {'phase':>6s} |"
          f" {'d mean %':>8s} {'d astig':>7s} {'d angle':>7s} {'d phase':>7s} {'score':>6s}"
          f" {'fit to A':>8s} {'s':>5s}  ok")
    worst = {"mean": 0.0, "astig": 0.0, "angle": 0.0}
    failures = 0
    cases = _cases(rng)
    with tempfile.TemporaryDirectory() as tmp:
        for k, (label, ctf, frames, drift, phase_plate) in enumerate(cases):
            path = Path(tmp) / f"case{k:02d}.mrc"
            _simulate(path, ctf, frames, drift, size, seed + k)
            options = ThonOptions(pixel_size_a=1.0, voltage_kv=ctf.voltage_kv,
                                  phase_plate=phase_plate)
            start = time.perf_counter()
            fit = run_thon([path], Path(tmp) / f"out{k:02d}", options).fits[path.name]
            seconds = time.perf_counter() - start
            path.unlink()
            row, ok = _errors(ctf, fit.ctf)
            failures += not ok
            for key in worst:
                worst[key] = max(worst[key], abs(row[key]) if np.isfinite(row[key]) else 0.0)
            phase = (f"{(fit.ctf.phase_shift_deg - ctf.phase_shift_deg + 90) % 180 - 90:+7.1f}"
                     if phase_plate else f"{'':7s}")
            print(f"{label:20s} {ctf.voltage_kv:4.0f} {ctf.mean_defocus_a:7.0f} "
                  f"{ctf.astigmatism_a:6.0f} {ctf.defocus_angle_deg:6.1f} "
                  f"{ctf.phase_shift_deg:6.1f} | {row['mean']:+8.2f} {row['astig']:+7.0f} "
                  f"{row['angle']:+7.1f} {phase} {fit.score:6.3f} {fit.fit_resolution_a:8.2f} "
                  f"{seconds:5.1f}  {'yes' if ok else 'NO'}", flush=True)
    print(f"{len(cases) - failures} of {len(cases)} within the tolerances; largest errors: mean "
          f"defocus {worst['mean']:.2f}%, astigmatism {worst['astig']:.0f} A, angle (astigmatism"
          f" >= 500 A) {worst['angle']:.1f} deg")


def _errors(truth, got):
    """Signed errors (mean %, astigmatism Å, angle °) and whether they are within tolerance."""
    astig = truth.astigmatism_a
    angle = ((got.defocus_angle_deg - truth.defocus_angle_deg + 90.0) % 180.0 - 90.0
             if astig >= 500 else float("nan"))
    row = {"mean": 100.0 * (got.mean_defocus_a / truth.mean_defocus_a - 1.0),
           "astig": got.astigmatism_a - astig, "angle": angle}
    ok = (abs(row["mean"]) <= 1.0 and abs(row["astig"]) <= max(100.0, 0.1 * astig)
          and (astig < 500 or abs(angle) <= 5.0))
    return row, ok


def speed(size):
    from spectools.ops.ctf import CTF
    from spectools.pipelines import thon

    ctf = CTF(21000.0, 19800.0, 35.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mic.mrc"
        _simulate(path, ctf, 1, (0.0, 0.0), size, 0)
        common = ["thon", str(path), "--pixel-size", "1.0"]
        given = min(fresh(common + ["-o", f"{tmp}/a", "--defocus", "21000"])["seconds"]
                    for _ in range(3))
        fitted = min(fresh(common + ["-o", f"{tmp}/b"])["seconds"] for _ in range(3))
        options = thon.ThonOptions(pixel_size_a=1.0)
        result, _ = thon._spectrum_of(path, options, thon.read_references(options), True)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fit = thon._fit(result, options)
            times.append(time.perf_counter() - start)
    print(f"one {size}x{size} micrograph, 1 A/px: spectools thon {given:.2f} s with the "
          f"defocus given, {fitted:.2f} s fitting it (+{fitted - given:.2f} s: the fit "
          f"spectrum and the fit); fit_ctf alone {min(times):.2f} s "
          f"(defocus {fit.ctf.defocus_u_a:.0f}/{fit.ctf.defocus_v_a:.0f} A at "
          f"{fit.ctf.defocus_angle_deg:.1f} deg; truth 21000/19800 at 35)")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "accuracy"
    if mode == "accuracy":
        accuracy(int(sys.argv[2]) if len(sys.argv) > 2 else 2048,
                 int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    elif mode == "speed":
        speed(int(sys.argv[2]) if len(sys.argv) > 2 else 4096)
    else:
        sys.exit(f"unknown mode {mode!r}: accuracy or speed")


if __name__ == "__main__":
    main()
