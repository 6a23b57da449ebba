"""spectools: averaged power spectra of aligned helical segments, aligned stacks,
Thon-ring spectra, and a cryoSPARC / RELION / SPIDER format bridge.

The package is layered; each layer imports only from the layers before it
(``tests/test_layers.py`` checks it), and the library never imports Scipion:

``errors``
    :class:`SpectoolsError` (one-line messages) and the hints that name options.
``io`` and ``ops`` (side by side, neither imports the other)
    ``io``: file syntax (STAR, ``.cs``, SPIDER docs and images, MRC, TIFF/EER,
    atomic outputs); knows nothing about alignments.  ``ops``: pure array
    functions (geometry, resampling, Fourier layout, masks, power spectra,
    axis angles, layer lines, the CTF, Thon rings, detector corrections).
``particles``
    The particle table and its one alignment convention (``conventions/model.md``).
``formats``
    Readers and writers that map each package's metadata to and from the table.
``pipelines``
    The jobs (averaged spectrum, symmetry candidates, aligned stack, Thon
    rings, conversion, description), streaming over stacks, with the one description of every
    option that the front ends show.
``simulate`` and ``plots`` (beside ``pipelines``)
    Simulators with exact ground truth; the pictures people look at.
``cli`` (and the Scipion plugin ``spectools_scipion``, outside this package)
    Front ends: thin adapters around the pipelines.

The names below are the public façade; everything else is importable from
its module.
"""
__version__ = "0.1.0"
#: The project's home page (setup.py and the Scipion plugin show it).
__url__ = "https://github.com/spectools/spectools"

from .errors import Hint, SpectoolsError  # noqa: E402
from .formats import read_particles, write_particles  # noqa: E402
from .ops.ctf import CTF  # noqa: E402
from .particles import ParticleTable  # noqa: E402
from .pipelines.aligned_stack import StackOptions, run_stack  # noqa: E402
from .pipelines.avgps import AvgpsOptions, run_avgps  # noqa: E402
from .pipelines.convert import ConvertOptions, run_convert  # noqa: E402
from .pipelines.index import IndexOptions, run_index  # noqa: E402
from .pipelines.index import index_spectrum as index  # noqa: E402
from .pipelines.inputs import checked_table, select  # noqa: E402
from .pipelines.refine import RefineOptions, run_refine  # noqa: E402
from .pipelines.thon import ThonOptions, run_thon  # noqa: E402

__all__ = ["SpectoolsError", "Hint", "ParticleTable", "CTF", "read_particles",
           "write_particles", "checked_table", "select", "AvgpsOptions", "run_avgps",
           "StackOptions", "run_stack", "ThonOptions", "run_thon", "ConvertOptions",
           "run_convert", "IndexOptions", "run_index", "index", "RefineOptions", "run_refine",
           "__version__"]
