"""What each job's request costs in memory, estimated before anything is allocated.

Sizes the input does not bound (an output box, a padding factor, a target
pixel size) can ask for more memory than any machine has.  Each job calls
one function here with its parameters before reading images; the estimate
is the job's peak (the batches in flight on the worker threads, the
accumulators, the pictures), and :func:`spectools.io.memory.check_memory`
refuses a request that does not fit, in one line.  Batch sizes shrink for
large images so that the batches in flight stay within a fixed budget (the
same on every machine, so results do not depend on it).

The coefficients are bytes per pixel of each array the jobs hold at their
peak.  ``benchmarks/bench_limits.py`` runs requests in fresh processes and
compares: estimates are 1.5 to 6 times the measured peak (never below it), so
only requests well beyond the machine are refused.
"""
from __future__ import annotations

from ..errors import Hint, SpectoolsError
from ..io import memory
from ..ops.thon_rings import target_size
from .workers import available_cpus

#: Bytes per input pixel of an image being aligned on a worker thread (the
#: image, its spectrum for the Fourier shears or spline coefficients, and
#: their temporaries).
ALIGN_BYTES_PER_PX = 32
#: Bytes per output pixel of an aligned image on a worker (cropped or padded,
#: its copy for the writer) and waiting to be written (float32).
STACK_WORK_BYTES_PER_PX = 8
STACK_HELD_BYTES_PER_PX = 4
#: Bytes per pixel of the padded plane for a segment on a worker: its
#: half-plane transform (complex64) and its power.
AVGPS_PADDED_BYTES_PER_PX = 12
#: Bytes per pixel of the padded plane held once: the result's orientations
#: and full planes (per class: its sum, 8 more).
AVGPS_PLANE_BYTES_PER_PX = 32
#: Bytes per pixel of the padded plane held by each job in flight (its sums).
AVGPS_JOB_BYTES_PER_PX = 8
#: Bytes per pixel of a picture: matplotlib's RGBA float copies of an image.
PICTURE_BYTES_PER_PX = 48
#: Bytes per pixel of a Thon spectrum after resizing: the interpolation
#: grid (two float64 planes), the result and the display panel.
THON_BOX_BYTES_PER_PX = 56
#: Bytes per pixel of a movie frame on a worker: the frame, the corrected sum,
#: and the Welch tiles' transforms.
FRAME_BYTES_PER_PX = 24
#: Memory the batches at work and waiting may take, whatever the machine has
#: (see :func:`batch_that_fits`).
BATCH_BUDGET_BYTES = 1 << 30
#: Fewest pixels a Thon spectrum may be cropped to for a target pixel size.
MIN_TARGET_PX = 16


def batch_that_fits(per_item_bytes, fixed_bytes, batch_size, what, hint=None):
    """The batch size for a request, once its memory is known to fit.

    The batch is the largest (at most ``batch_size``) whose items take at
    most :data:`BATCH_BUDGET_BYTES`: it depends on the request only, never on
    the machine, so a job's results (its noise fill, its sums) are the same
    wherever it runs.  The request is then refused when even that does not
    fit in the available memory.

    Parameters
    ----------
    per_item_bytes : float
        Memory one item (image) of a batch costs, counted over every batch
        at work or waiting at once.
    fixed_bytes : float
        Memory held whatever the batch size (accumulators, pictures).
    batch_size : int
        The largest batch the job uses.
    what : str
        The request, for the message.

    Raises
    ------
    SpectoolsError
        When the request does not fit.
    """
    fits = int(BATCH_BUDGET_BYTES // per_item_bytes) if per_item_bytes > 0 else batch_size
    batch = max(1, min(batch_size, fits))
    memory.check_memory(fixed_bytes + batch * per_item_bytes, what, hint=hint)
    return batch


def stack_batch_size(box_in, box_out, workers, batch_size=32):
    """Images per batch of an aligned stack that fit in memory (refuses when none do).

    Each of ``workers`` threads aligns a batch; up to ``2 x workers + 1``
    aligned batches wait to be written (:func:`~spectools.pipelines.batches.ordered_map`).
    """
    workers = max(workers, 1)
    per_image = (workers * (box_in ** 2 * ALIGN_BYTES_PER_PX
                            + box_out ** 2 * STACK_WORK_BYTES_PER_PX)
                 + (2 * workers + 1) * box_out ** 2 * STACK_HELD_BYTES_PER_PX)
    return batch_that_fits(per_image, 0, batch_size,
                           f"an aligned stack of {box_out}-px images" + _on_threads(workers),
                           hint=_hint(workers, Hint("box", purpose="choose a smaller output box")))


def avgps_batch_size(box, pad, n_classes, workers, pictures, batch_size=32):
    """Segments per batch of an averaged spectrum that fit in memory (refuses when none do).

    ``pictures``: whether PNGs the size of the padded plane are drawn.
    """
    workers = max(workers, 1)
    padded = (box * pad) ** 2
    fixed = padded * (AVGPS_PLANE_BYTES_PER_PX + 8 * n_classes
                      + (2 * workers + 1) * AVGPS_JOB_BYTES_PER_PX
                      + (PICTURE_BYTES_PER_PX if pictures else 0))
    per_segment = workers * (padded * AVGPS_PADDED_BYTES_PER_PX + box ** 2 * ALIGN_BYTES_PER_PX)
    return batch_that_fits(per_segment, fixed, batch_size,
                           f"an averaged spectrum padded to {box * pad} px "
                           f"({n_classes} class{'es' * (n_classes != 1)})" + _on_threads(workers),
                           hint=_hint(workers, Hint("pad", purpose="pad less")))


def _cores():
    """The cores this process may run on."""
    return available_cpus()


def _on_threads(workers):
    """``" on 64 threads"`` when there are more threads than cores (each holds batches)."""
    return f" on {workers} threads" if workers > _cores() else ""


def _hint(workers, hint):
    """Fewer threads when there are more than cores, else ``hint``."""
    if workers > _cores():
        return Hint("workers", _cores(), "use one per core")
    return hint


def check_thon_memory(frame_shape, spectrum_px, target_px, box, workers):
    """Refuse a Thon-ring request whose spectrum, once resampled, cannot be held.

    Parameters
    ----------
    frame_shape : (int, int)
        ``(ny, nx)`` of the frames.
    spectrum_px : int
        Side of the computed spectrum (the tile, or the box of the whole method).
    target_px : int
        Side after cropping or padding to the target pixel size.
    box : int
        Side of the written spectrum and its picture.
    """
    ny, nx = frame_shape
    needed = (max(workers, 1) * ny * nx * FRAME_BYTES_PER_PX
              + spectrum_px ** 2 * 8 * 4 + target_px ** 2 * 8 * 2
              + box ** 2 * (THON_BOX_BYTES_PER_PX + PICTURE_BYTES_PER_PX))
    what = (f"a {box}-px Thon spectrum" if target_px <= max(box, spectrum_px)
            else f"a Thon spectrum padded to {target_px} px for the target pixel size")
    memory.check_memory(needed, what, hint=Hint("box" if target_px <= max(box, spectrum_px)
                                         else "target_apix", purpose="ask for less"))



def check_thon_request(path, frame_shape, pixel_size_a, options):
    """Refuse a Thon-ring request for ``path`` that leaves too little spectrum or too much.

    Parameters
    ----------
    path : path-like
        The micrograph or movie (named in messages).
    frame_shape : (int, int)
    pixel_size_a : float
        The frames' pixel size (0 when unknown: nothing to check yet).
    options : ThonOptions
        ``method``, ``tile``, ``box``, ``target_apix``, ``workers``.
    """
    spectrum_px = options.tile if options.method == "welch" else options.box
    target_px = spectrum_px
    if options.target_apix and pixel_size_a > 0:
        # a target finer than the data stops at the data's Nyquist (no padding)
        target_px = min(spectrum_px, target_size(spectrum_px, pixel_size_a, options.target_apix))
        if target_px < MIN_TARGET_PX:
            largest = spectrum_px * pixel_size_a / (MIN_TARGET_PX - 1)
            raise SpectoolsError(f"a target pixel size of {options.target_apix:g} A leaves "
                                 f"{target_px} of the spectrum's {spectrum_px} pixels (at least "
                                 f"{MIN_TARGET_PX}: at most {largest:.4g} A)", path,
                                 hint=Hint("target_apix", purpose="choose a smaller one"))
    shown_pixel = (max(options.target_apix or 0.0, pixel_size_a) if pixel_size_a > 0
                   else 0.0)
    if options.min_res_a and shown_pixel > 0 and options.min_res_a <= 2 * shown_pixel:
        raise SpectoolsError(f"the lowest resolution shown ({options.min_res_a:g} A) is finer "
                             f"than Nyquist ({2 * shown_pixel:.4g} A at {shown_pixel:.4g} "
                             "A/px): the picture would be empty", path,
                             hint=Hint("min_res_a", purpose="choose a coarser one"))
    check_thon_memory(frame_shape, spectrum_px, target_px, options.box, options.workers)
