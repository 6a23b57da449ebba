"""The Dask engine of ``spectools avgps``: scaling from 1 to 2 workers, memory, overhead.

Usage: python benchmarks/bench_dask.py [N_SEGMENTS] [BOX]
(default 20,000 random segments of 128 x 128 in stacks of 200; needs
``spectools[dask]``)

Runs, on the same STAR file, the defaults of ``spectools avgps`` (tube mask,
pad 2, axis measured per class, camera-raster step):

* the local engine on 1 thread and on 2 threads, in a fresh process each (start-up
  included, for peak RSS) and in this process after a warm-up run (to compare with
  the warm workers);
* ``--dask`` on a ``distributed.LocalCluster`` of 1 and of 2 worker
  processes (one thread each), and of 2 workers on a quarter of the
  segments (memory must not grow with them).

Each cluster is started, and its workers import spectools and load numba's
cached kernels on a warm-up run of 64 segments, before the timed run: a
long-lived cluster pays that once.  Printed: segments per second, the
throughput ratio of 2 workers to 1, the overhead of 1 worker against the
warm local engine on 1 thread, and the peak RSS of each worker process and of the
client.  On a machine shared with others, run it under ``flock -x``.
"""
import contextlib
import io
import resource
import sys
import tempfile
import time
from pathlib import Path

from bench_stack import make_input, warm_up
from measure import fresh

DEFAULTS = ["--tube-diameter", "75"]


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def on_cluster(workers, star, warm, output):
    """Seconds of one ``avgps --dask`` run on a fresh LocalCluster, and each worker's peak RSS."""
    from distributed import Client, LocalCluster

    from spectools.cli.main import main

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        argv = ["--threads", "1", "--dask", cluster.scheduler_address] + DEFAULTS
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["avgps", str(warm), "-o", str(output)] + argv) == 0
            start = time.perf_counter()
            assert main(["avgps", str(star), "-o", str(output)] + argv) == 0
            seconds = time.perf_counter() - start
        rss = sorted(client.run(_peak_rss_mb).values())
    return seconds, rss


def warm_local(threads, star, warm, output):
    """Seconds of one local ``avgps`` run in this process after a warm-up run.

    The Dask runs are timed on warm workers; the local engine is timed warm
    too, so that the overhead compares the engines, not start-ups.
    """
    from spectools.cli.main import main

    argv = ["--threads", str(threads)] + DEFAULTS
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["avgps", str(warm), "-o", str(output)] + argv) == 0
        start = time.perf_counter()
        assert main(["avgps", str(star), "-o", str(output)] + argv) == 0
        return time.perf_counter() - start


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    box = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"writing {n} random {box}x{box} segments in stacks of 200...")
        star = make_input(folder, n, box)
        quarter = make_input(folder, n // 4, box, name="quarter.star", prefix="quarter")
        output = folder / "ps.mrc"
        warm = warm_up(folder, box, [["avgps", "{star}", "-o", str(output), *DEFAULTS]])
        local = {threads: fresh(["avgps", str(star), "-o", str(output), *DEFAULTS,
                                 "--threads", str(threads)]) for threads in (1, 2)}
        for threads, r in local.items():
            print(f"local engine, {threads} thread(s), fresh process (start-up included): "
                  f"{n / r['seconds']:7.1f} seg/s ({r['seconds']:.1f} s, peak RSS "
                  f"{r['peak_rss_mb']:.0f} MB)")
        warm_seconds = {threads: warm_local(threads, star, warm, output) for threads in (1, 2)}
        for threads, seconds in warm_seconds.items():
            print(f"local engine, {threads} thread(s), warm process: {n / seconds:7.1f} seg/s "
                  f"({seconds:.1f} s)")
        dask = {}
        for workers, table, count in ((1, star, n), (2, star, n), (2, quarter, n // 4)):
            seconds, rss = on_cluster(workers, table, warm, output)
            dask[(workers, count)] = seconds
            print(f"dask, {workers} worker process(es), {count} segments: "
                  f"{count / seconds:7.1f} seg/s ({seconds:.1f} s); peak RSS per worker "
                  f"{', '.join(f'{m:.0f}' for m in rss)} MB")
        print(f"throughput ratio, 2 workers / 1 worker: {dask[(1, n)] / dask[(2, n)]:.2f}")
        print(f"overhead of 1 worker against the local engine on 1 thread: "
              f"{100 * (dask[(1, n)] / warm_seconds[1] - 1):+.1f}% (both warm)")
        print(f"2 workers against the local engine on 2 threads: "
              f"{100 * (dask[(2, n)] / warm_seconds[2] - 1):+.1f}% (both warm)")
        print(f"client peak RSS: {_peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
