"""Running a job's tasks on a Dask cluster (``dask.distributed``, extra ``spectools[dask]``).

The jobs keep their own engines; this module only ships their tasks.  A task
is a plain function of a part of the input (a group of stack files for the
averaged spectrum, a run of output batches for the aligned stack, one movie
for Thon rings) that returns what the local engine accumulates; the client
reduces the results with the same code as on one machine and writes the
outputs itself, atomically, as a local run does.

What this relies on and guarantees:

* **Paths**: workers read the stacks by the paths in the metadata, so they
  must see the same file system (or the same paths) as the client.  A file a
  worker cannot read stops the run with a one-line error that names the file
  and the worker's host; nothing is written.
* **Lost workers**: a task whose worker dies is run again elsewhere by Dask
  (``distributed.scheduler.allowed-failures``); tasks are pure functions of
  their part, so a retry gives the same result.  A task that keeps killing
  workers ends the run with an error, never a partial output.
* **Memory**: at most :func:`in_flight` tasks are submitted at a time, and
  results are consumed in order, so the client holds a bounded number of
  results whatever the size of the input.
"""
from __future__ import annotations

import ctypes
import functools
import os
import socket
import sys

import numpy as np

from ..errors import SpectoolsError

#: Environment variable naming the scheduler when no address is given.
SCHEDULER_ENV = "SPECTOOLS_DASK_SCHEDULER"
#: Segments per task at most (a retry after a lost worker redoes at most this).
MAX_SEGMENTS_PER_TASK = 4096
#: Tasks per worker thread the input is cut into (load balance against overhead).
TASKS_PER_THREAD = 4
#: glibc's allocator settings in a worker (bytes): see :func:`worker_allocator`.
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 64 * 2**20

DASK_HELP = (f"Run on a Dask cluster: the scheduler's address (e.g. tcp://host:8786, or "
             f"the path of a scheduler file); default ${SCHEDULER_ENV} when set.  The "
             f"workers must read the stacks by the same paths.")


def scheduler_address(address=None):
    """The scheduler to use: ``address``, else ``$SPECTOOLS_DASK_SCHEDULER``, else None (local)."""
    return address or os.environ.get(SCHEDULER_ENV) or None


def connect(address):
    """A ``distributed.Client`` connected to the scheduler at ``address``.

    ``address`` is ``tcp://host:port`` (or any address Dask takes), or the
    path of a scheduler file written by ``dask scheduler --scheduler-file``.
    How long to try is Dask's ``distributed.comm.timeouts.connect``.
    """
    try:
        from distributed import Client
    except ImportError:
        raise SpectoolsError("the Dask engine needs the 'distributed' package; install it with "
                             "pip install 'spectools[dask]'") from None
    where = {"scheduler_file": address} if os.path.isfile(address) else {"address": address}
    try:
        return Client(**where, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SpectoolsError(f"cannot reach the Dask scheduler at {address} "
                             f"({' '.join(str(exc).split()) or type(exc).__name__})") from None


def worker_threads(client):
    """Threads of all the cluster's workers (at least 1)."""
    return max(1, sum(client.nthreads().values()))


def in_flight(client):
    """How many tasks to keep submitted at a time: two per worker thread."""
    return 2 * worker_threads(client)


def engine_record(client):
    """What a sidecar records of the cluster a job ran on."""
    info = client.scheduler_info()
    return {"engine": "dask", "scheduler": info.get("address", ""),
            "workers": len(info.get("workers", {})), "threads": worker_threads(client)}


def segments_per_task(n_segments, client, at_least=1):
    """Segments per task: :data:`TASKS_PER_THREAD` tasks per worker thread, within bounds."""
    wanted = -(-n_segments // (TASKS_PER_THREAD * worker_threads(client)))
    return int(min(MAX_SEGMENTS_PER_TASK, max(at_least, wanted)))


def stack_groups(image_paths, per_task):
    """Row groups of segments that live together on disk, about ``per_task`` each.

    Segments are grouped by stack file, in order of first appearance; small
    stacks are bundled until a group reaches ``per_task`` segments, and a stack
    larger than that is cut into consecutive runs of its rows.

    Parameters
    ----------
    image_paths : array_like of str
        The stack of each segment (the table's ``image_path``).
    per_task : int

    Returns
    -------
    list of ndarray of int
        Table positions, each group sorted.
    """
    paths = np.asarray(image_paths)
    _, first, stack_of = np.unique(paths, return_index=True, return_inverse=True)
    stack_of = stack_of.ravel()
    # One stable sort puts each stack's rows together, in table order: a scan of
    # the table per stack would cost segments x stacks comparisons on the client.
    order = np.argsort(stack_of, kind="stable")
    bounds = np.cumsum(np.bincount(stack_of, minlength=len(first)))[:-1]
    rows_of = np.split(order, bounds)
    groups, current, held = [], [], 0
    for stack in np.argsort(first, kind="stable"):
        rows = rows_of[stack]
        for start in range(0, len(rows), per_task):
            current.append(rows[start:start + per_task])
            held += len(current[-1])
            if held >= per_task:
                groups.append(np.sort(np.concatenate(current)))
                current, held = [], 0
    if current:
        groups.append(np.sort(np.concatenate(current)))
    return groups


def ordered_results(client, func, items, *, sizes=None, bar=None, shared=None, window=None):
    """``func(item, **shared)`` for each item on the cluster, yielded in order.

    Parameters
    ----------
    client : distributed.Client
    func : callable
        A module-level function (it is pickled to the workers).
    items : sequence
        One task each.
    sizes : sequence of int, optional
        What each task counts for on the progress bar (default 1).
    bar : tqdm, optional
        Advanced as tasks finish (in any order).
    shared : dict, optional
        Large arguments common to every task (e.g. a gain reference): sent
        to the cluster once.
    window : int, optional
        Tasks submitted at a time (default :func:`in_flight`): bounds the
        results the client holds.

    Raises
    ------
    SpectoolsError
        The first error of a task (e.g. a stack a worker cannot read), or
        Dask's when a task kept killing its workers; the other tasks are
        cancelled.
    """
    sizes = list(sizes) if sizes is not None else [1] * len(items)
    shared = {name: client.scatter(value, broadcast=True, hash=False)
              for name, value in (shared or {}).items()}
    task = functools.partial(_on_worker, func)
    window = window or in_flight(client)
    pending = []
    try:
        for index in range(len(items)):
            pending.append(_submit(client, task, items[index], shared, sizes[index], bar))
            if len(pending) >= window:
                yield _result(pending.pop(0))
        while pending:
            yield _result(pending.pop(0))
    finally:
        for future in pending:
            future.cancel()


def _submit(client, task, item, shared, size, bar):
    future = client.submit(task, item, pure=False, **shared)
    if bar is not None:
        future.add_done_callback(lambda done: bar.update(size) if done.status == "finished"
                                 else None)
    return future


def _result(future):
    """The task's result, with a lost cluster's or a worker's error as a one-line message."""
    try:
        return future.result()
    except SpectoolsError:
        raise
    except Exception as exc:  # KilledWorker, CommClosedError...: Dask's own failures
        raise SpectoolsError(f"the Dask cluster could not run a task: {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())}") from None


@functools.lru_cache(maxsize=None)
def worker_allocator():
    """Give this worker process glibc's heap back for the engines' per-image arrays (once).

    Dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536``; setting
    it switches off glibc's sliding mmap threshold, so every array above
    128 kB (a padded spectrum, a batch of images) becomes an mmap/munmap pair
    with fresh page faults: the averaged spectrum ran 1.5 times slower in a
    worker than in a plain process.  Buffers of up to :data:`MMAP_THRESHOLD`
    come from the heap again, which returns memory beyond
    :data:`TRIM_THRESHOLD`.  Returns whether the settings took (glibc only).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    return bool(libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD)
                and libc.mallopt(m_trim_threshold, TRIM_THRESHOLD))


def _on_worker(func, item, **shared):
    """Run one task; a file the worker cannot read becomes a message naming file and host."""
    worker_allocator()
    try:
        return func(item, **shared)
    except SpectoolsError as exc:
        if exc.path and not os.access(exc.path, os.R_OK):
            raise SpectoolsError(f"{exc.reason} (on Dask worker {socket.gethostname()}, which "
                                 f"must read the stacks by the same paths)", exc.path) from None
        raise
    except OSError as exc:
        raise SpectoolsError(f"cannot be read on Dask worker {socket.gethostname()} "
                             f"({exc.strerror or type(exc).__name__}); the workers must read "
                             f"the stacks by the same paths", exc.filename) from None
