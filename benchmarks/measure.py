"""Run one ``spectools`` command in a fresh process; report its time and peak RSS.

A fresh process per measurement, so that each peak RSS is that command's own.
Usage from a benchmark: ``measure.fresh(["stack", "in.star", "-o", "out.mrcs"])``.
"""
import contextlib
import io
import json
import resource
import subprocess
import sys
import time


def fresh(argv):
    """Run ``spectools ARGV`` in a new interpreter; return ``code``, ``seconds``, ``peak_rss_mb``."""
    result = subprocess.run([sys.executable, __file__, json.dumps(argv)], capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _child(argv):
    from spectools.cli.main import main
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return {"code": code, "seconds": time.perf_counter() - start,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
