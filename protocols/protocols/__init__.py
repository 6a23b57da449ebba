"""The spectools protocols (Scipion registers classes defined under this package).

Class names carry the ``SpectoolsProt`` prefix: Scipion keys protocols by class
name across all installed plugins.
"""
from .protocol_avgps import SpectoolsProtAveragedSpectrum
from .protocol_import_cryosparc import SpectoolsProtImportCryosparc
from .protocol_index import SpectoolsProtIndexHelical
from .protocol_stack import SpectoolsProtAlignedStack
from .protocol_thon import SpectoolsProtThonRings

__all__ = ["SpectoolsProtAveragedSpectrum", "SpectoolsProtAlignedStack",
           "SpectoolsProtThonRings", "SpectoolsProtImportCryosparc", "SpectoolsProtIndexHelical"]
