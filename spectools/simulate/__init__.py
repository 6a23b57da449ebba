"""Simulators with exact ground truth: helical segments, datasets, micrographs and movies.

:mod:`.segments` renders helical segments analytically; :mod:`.dataset` writes
multi-class datasets (stacks, metadata, ground truth); :mod:`.micrographs`
simulates micrographs, movies and detector references.
"""
