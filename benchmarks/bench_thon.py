"""Throughput and peak memory of ``spectools thon``.

Usage: python benchmarks/bench_thon.py [FRAMES] [SIZE] [MICROGRAPHS]
(default: a 40-frame 4096x4096 float32 movie, and 20 micrographs of 4096x4096)

The movie comes from ``make_movie.py`` (known CTF, drift, gain stripes) and is
processed with its gain reference, Welch tiles of 512 px at 50% overlap;
the micrographs are random images (the cost does not depend on the content).
No CTF is fitted (``--no-fit-ctf``); ``bench_ctf_fit.py speed`` times the fit.
Each run is a fresh process, so its peak RSS is its own.
"""
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import fresh

HERE = Path(__file__).parent


def main():
    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    import numpy as np
    from spectools.simulate.micrographs import write_movie
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        movie = folder / "movie.mrc"
        print(f"writing a {frames}-frame {size}x{size} movie...", flush=True)
        subprocess.run([sys.executable, str(HERE / "make_movie.py"), str(movie), "--frames",
                        str(frames), "--size", str(size)], check=True, capture_output=True)
        r = fresh(["thon", str(movie), "-o", str(folder / "out"), "--gain",
                   str(folder / "movie_gain.mrc"), "--pixel-size", "1.0", "--no-fit-ctf"])
        print(f"movie: {frames} frames in {r['seconds']:.1f} s = {frames / r['seconds']:.2f} "
              f"frames/s, peak RSS {r['peak_rss_mb']:.0f} MB")
        movie.unlink()
        rng = np.random.default_rng(0)
        mics = []
        for i in range(count):
            path = folder / f"mic{i:02d}.mrc"
            write_movie(path, rng.standard_normal((1, size, size), dtype=np.float32), 1.0)
            mics.append(str(path))
        r = fresh(["thon", *mics, "-o", str(folder / "mics"), "--pixel-size", "1.0",
                   "--no-fit-ctf"])
        print(f"micrographs: {count} in {r['seconds']:.1f} s = {count / r['seconds']:.2f} "
              f"micrographs/s, peak RSS {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
