"""Scipion plugin for spectools (installed as ``spectools_scipion``).

Scipion finds the plugin through the ``pyworkflow.plugin`` entry point
``spectools_scipion = spectools_scipion`` (setup.py): the entry-point *name*
is what it imports.  The protocols live in :mod:`spectools_scipion.protocols`
(Scipion registers only classes defined under ``<plugin>.protocols``), the
viewer in :mod:`spectools_scipion.viewers`, the conversion between Scipion
objects and spectools' model in :mod:`spectools_scipion.convert`.

Every protocol step calls the same ``spectools`` pipelines as the
``spectools`` command; nothing is re-implemented here.  The ``spectools``
library never imports this package.
"""
import pwem

from spectools import __url__, __version__  # noqa: F401  (the plugin version Scipion shows)

#: References of the whole plugin; each protocol lists its own (``_references``), and the
#: Methods text links the program itself ([spectools], see bibtex.py).
_references = []


class Plugin(pwem.Plugin):
    """spectools needs no external binaries: everything runs in Python."""

    _url = __url__

    @classmethod
    def _defineVariables(cls):
        pass

    @classmethod
    def defineBinaries(cls, env):
        pass
