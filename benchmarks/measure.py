"""Run one command in a fresh process; report its time and peak RSS.

A fresh process per measurement, so that each peak RSS is that command's own.
Usage from a benchmark: ``measure.fresh(["stack", "in.star", "-o", "out.mrcs"])`` runs
``spectools``; ``measure.external(["relion_stack_create", ...], cwd)`` runs another program.

``SPECTOOLS_BASELINE=FOLDER`` (a checkout of an older commit, e.g. made with
``git worktree add`` or ``git archive``) lets a benchmark time that code too,
in the same run: ``fresh(argv, BASELINE)`` imports spectools from there.
"""
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

#: RELION 5.0.1's programs, beside the repository (../shared/oracles/README.md), or where
#: SPECTOOLS_ORACLES says.
ORACLES = Path(os.environ.get("SPECTOOLS_ORACLES")
               or Path(__file__).resolve().parents[1].parent / "shared" / "oracles")
RELION = ORACLES / "relion-5.0.1" / "relion"
#: An older checkout to time beside this one (``SPECTOOLS_BASELINE``), or None.
BASELINE = os.environ.get("SPECTOOLS_BASELINE") or None


def fresh(argv, source=None):
    """Run ``spectools ARGV`` in a new interpreter (spectools from the folder ``source`` if given).

    Returns ``code``, ``seconds`` (wall), ``cpu_seconds`` (user + system, all
    threads) and ``peak_rss_mb``.  On a machine others load too, the CPU
    seconds of a one-thread run measure its cost better than the wall time.
    """
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source),
                                                          env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, __file__, "spectools", json.dumps(argv)],
                            capture_output=True, text=True, check=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def external(argv, cwd):
    """Run a program from a new interpreter that waits for it; the same keys as :func:`fresh`."""
    result = subprocess.run([sys.executable, __file__, "external", json.dumps(argv), str(cwd)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def relion(program, args, cwd):
    """``relion PROGRAM ARGS`` (RELION 5.0.1 from ../shared/oracles), or None when absent."""
    if not RELION.exists():
        return None
    return external([str(RELION), program, *args], cwd)


def _cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _spectools(argv):
    # The clock starts before the import, as RELION's runs from its process start:
    # importing spectools (pandas, numba) is part of what a user waits for.
    start, cpu = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    from spectools.cli.main import main
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return {"code": code, "seconds": time.perf_counter() - start,
            "cpu_seconds": _cpu(resource.RUSAGE_SELF) - cpu,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _external(argv, cwd):
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.strip()[-500:]}")
    return {"code": done.returncode, "seconds": seconds,
            "cpu_seconds": _cpu(resource.RUSAGE_CHILDREN),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


if __name__ == "__main__":
    if sys.argv[1] == "spectools":
        print(json.dumps(_spectools(json.loads(sys.argv[2]))))
    else:
        print(json.dumps(_external(json.loads(sys.argv[2]), sys.argv[3])))
