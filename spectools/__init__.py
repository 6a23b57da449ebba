"""spectools: averaged power spectra of aligned helical segments, aligned stacks,
Thon-ring spectra, and a cryoSPARC / RELION / SPIDER format bridge.

The library never imports Scipion.  Its layers, each calling only downward:

``spectools.io``
    File syntax: STAR text, cryoSPARC ``.cs`` arrays, SPIDER doc files and
    images, MRC stacks.  Knows nothing about alignments.
``spectools.model``
    The common particle table and its one alignment convention
    (``conventions/model.md``).
``spectools.formats``
    Readers and writers that map each package's metadata to and from the model.
``spectools.cli``
    The ``spectools`` command.
"""
__version__ = "0.1.0"

from .errors import SpectoolsError  # noqa: E402
from .formats import read_particles, write_particles  # noqa: E402
from .particles import ParticleTable  # noqa: E402

__all__ = ["SpectoolsError", "ParticleTable", "read_particles", "write_particles", "__version__"]
