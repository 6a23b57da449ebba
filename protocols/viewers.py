"""Viewer: the PNGs the spectools protocols write (spectra with their layer-line overlay)."""
import glob
import os

from pyworkflow.gui.plotter import Plotter
from pyworkflow.viewer import DESKTOP_TKINTER, WEB_DJANGO, Viewer

from .constants import INDEX_PNG
from .protocols import (SpectoolsProtAveragedSpectrum, SpectoolsProtIndexHelical,
                        SpectoolsProtThonRings)

#: Thon-ring PNGs shown at most in one window.
MAX_PANELS = 6


class SpectoolsPngViewer(Viewer):
    """Shows the averaged spectrum's PNG (with the predicted layer lines when an
    overlay was asked for) and the per-class PNGs, the symmetry candidates'
    PNG (the spectrum with the lines of the three best), or the Thon-ring PNGs."""
    _label = "spectools spectra (PNG)"
    _targets = [SpectoolsProtAveragedSpectrum, SpectoolsProtIndexHelical, SpectoolsProtThonRings]
    _environments = [DESKTOP_TKINTER, WEB_DJANGO]

    def _visualize(self, obj, **kwargs):
        files = png_files(obj)
        if not files:
            return [self.errorMessage("No PNG yet: the protocol has not finished.",
                                      title="spectools")]
        return [png_plotter(files, title=obj.getRunName())]


def png_files(protocol):
    """The PNGs to show for a finished spectools protocol, most important first."""
    extra = protocol._getExtraPath()
    if isinstance(protocol, SpectoolsProtAveragedSpectrum):
        combined = os.path.join(extra, "avgps.png")
        per_class = sorted(glob.glob(os.path.join(extra, "avgps_class*.png")))
        return [f for f in [combined] + per_class if os.path.exists(f)]
    if isinstance(protocol, SpectoolsProtIndexHelical):
        path = os.path.join(extra, INDEX_PNG)
        return [path] if os.path.exists(path) else []
    return sorted(glob.glob(os.path.join(extra, "**", "*_ps.png"), recursive=True))[:MAX_PANELS]


def png_plotter(files, title=""):
    """A matplotlib window (pyworkflow Plotter) with the PNGs side by side."""
    import matplotlib.image as mpimg

    n = len(files)
    cols = min(n, 3)
    rows = -(-n // cols)
    plotter = Plotter(x=rows, y=cols, mainTitle=title, figsize=(6 * cols, 5.5 * rows))
    for i, path in enumerate(files):
        ax = plotter.figure.add_subplot(rows, cols, i + 1)
        ax.imshow(mpimg.imread(path))
        ax.set_title(os.path.basename(path), fontsize=9)
        ax.axis("off")
    return plotter
