"""How many workers a job uses, and the option that sets it."""
import os

from .options import Option
from .parsing import parse_positive_int


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; all CPUs where there is none).

    A batch scheduler (SLURM, a Scipion queue) or ``taskset`` restricts the
    affinity: the default then follows what the job was given, not the
    machine's size.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no affinity masks
        return max(1, os.cpu_count() or 1)


#: The workers option every job has (its default comes from each job's options).
WORKERS = Option(name="workers", label="Threads", kind="int", parse=parse_positive_int,
                 flag="--threads", metavar="N",
                 help="Threads to run on (default: every CPU this process may use).")
