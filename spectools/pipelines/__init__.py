"""Pipelines: streaming over image stacks in batches, on top of the array operations.

:mod:`.batches` reads images in table order; :mod:`.aligned_stack` writes
aligned stacks with their metadata.  The command line and the Scipion
protocols call these, never the lower layers' loops.
"""
