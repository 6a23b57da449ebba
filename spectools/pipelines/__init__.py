"""Pipelines: the jobs, each an options dataclass and one ``run_...`` function.

Jobs: :mod:`.avgps` (averaged power spectrum; its engine is
:mod:`.spectrum_average`), :mod:`.aligned_stack` (aligned stacks),
:mod:`.thon` (Thon-ring spectra; engine :mod:`.frame_spectrum`),
:mod:`.convert` (metadata conversion), :mod:`.describe` (what a metadata file
holds).  Shared steps: :mod:`.inputs` (reading, selecting and checking
particles), :mod:`.batches` (reading images in batches, running batches on
worker threads), :mod:`.selfcheck` (the alignment convention against class
averages), :mod:`.sidecar` (the one JSON sidecar schema), :mod:`.limits`
(what a request costs in memory, estimated before anything is allocated).
:mod:`.options` and :mod:`.parsing` are the one description of every option
and the parsers of typed text, read by the command line and the Scipion
forms alike.
"""
