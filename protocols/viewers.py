"""Viewer: the PNGs the spectools protocols write (spectra with their layer-line overlay).

One window shows one picture at a time, at its own pixel size (so its text
stays as readable as in the file), with Previous/Next buttons and the arrow
keys to go through the others; the window is sized to the largest picture and
fits a 1600 x 900 screen.
"""
import glob
import os

from pyworkflow.gui.plotter import Plotter
from pyworkflow.viewer import DESKTOP_TKINTER, WEB_DJANGO, Viewer

from .constants import AVGPS_PNG, INDEX_PNG, PLUGIN_LABEL
from .protocols import (SpectoolsProtAveragedSpectrum, SpectoolsProtIndexHelical,
                        SpectoolsProtThonRings)

#: The largest window the viewer opens, pixels (a 1600 x 900 screen with its frame).
MAX_WIDTH_PX, MAX_HEIGHT_PX = 1500, 850
#: Height kept for the buttons and the title, pixels.
CONTROLS_PX = 44
DPI = 100


class SpectoolsPngViewer(Viewer):
    """Shows the averaged spectrum's PNG (with the predicted layer lines when an
    overlay was asked for), the layer-line profile and the per-class PNGs, the
    symmetry candidates' PNG (the spectrum with the lines of the three best), or
    the Thon-ring PNGs, one at a time."""
    _label = "spectools spectra (PNG)"
    _targets = [SpectoolsProtAveragedSpectrum, SpectoolsProtIndexHelical, SpectoolsProtThonRings]
    _environments = [DESKTOP_TKINTER, WEB_DJANGO]

    def _visualize(self, obj, **kwargs):
        pictures = png_files(obj)
        if not pictures:
            return [self.errorMessage("No PNG yet: the protocol has not finished.",
                                      title=PLUGIN_LABEL)]
        return [PngBrowser(pictures, title=obj.getRunName())]


def png_files(protocol):
    """(caption, path) of the PNGs to show for a finished protocol, most important first."""
    extra = protocol._getExtraPath()
    if isinstance(protocol, SpectoolsProtAveragedSpectrum):
        stem = os.path.splitext(AVGPS_PNG)[0]
        found = [("averaged power spectrum", os.path.join(extra, AVGPS_PNG)),
                 ("layer-line profile", os.path.join(extra, f"{stem}_profile.png"))]
        for path in sorted(glob.glob(os.path.join(extra, f"{stem}_class*.png"))):
            number = os.path.basename(path)[len(stem) + len("_class"):-len(".png")]
            found.append((f"class {int(number)}", path))
        return [(caption, path) for caption, path in found if os.path.exists(path)]
    if isinstance(protocol, SpectoolsProtIndexHelical):
        path = os.path.join(extra, INDEX_PNG)
        return [("symmetry candidates", path)] if os.path.exists(path) else []
    paths = sorted(glob.glob(os.path.join(extra, "**", "*_ps.png"), recursive=True))
    return [(os.path.basename(path)[:-len("_ps.png")], path) for path in paths]


def window_size_px(sizes):
    """Window (width, height) in pixels for pictures of ``sizes`` [(width, height)]."""
    width = max(w for w, _ in sizes)
    height = max(h for _, h in sizes) + CONTROLS_PX
    scale = min(1.0, MAX_WIDTH_PX / width, MAX_HEIGHT_PX / height)
    return int(width * scale), int(height * scale)


class PngBrowser(Plotter):
    """A Plotter window showing one of several PNGs, with Previous/Next buttons."""

    def __init__(self, pictures, title=""):
        import matplotlib.image as mpimg

        self.pictures = list(pictures)
        self.images = [mpimg.imread(path) for _, path in self.pictures]
        width, height = window_size_px([(im.shape[1], im.shape[0]) for im in self.images])
        super().__init__(figsize=(width / DPI, height / DPI), dpi=DPI,
                         windowTitle=f"{PLUGIN_LABEL}: {title}" if title else PLUGIN_LABEL)
        self.title = title
        self.index = 0
        controls = CONTROLS_PX / height
        self.axes = self.figure.add_axes((0.0, controls, 1.0, 1.0 - controls))
        self.axes.axis("off")
        self.caption = self.figure.text(0.02, 0.5 * controls, "", fontsize=10, va="center")
        self.buttons = []
        if len(self.pictures) > 1:
            self._add_buttons(controls)
            self.figure.canvas.mpl_connect("key_press_event", self._on_key)
        self.show_picture(0)

    def _add_buttons(self, controls):
        from matplotlib.widgets import Button

        for x, text, step in ((0.66, "◀ Previous", -1), (0.83, "Next ▶", 1)):
            axes = self.figure.add_axes((x, 0.15 * controls, 0.15, 0.7 * controls))
            button = Button(axes, text)
            button.on_clicked(lambda _event, step=step: self.show_picture(self.index + step))
            self.buttons.append(button)

    def _on_key(self, event):
        if event.key in ("right", "left"):
            self.show_picture(self.index + (1 if event.key == "right" else -1))

    def show_picture(self, index):
        """Show picture ``index`` (modulo their number) at its own size, if it fits."""
        self.index = index % len(self.pictures)
        caption, path = self.pictures[self.index]
        self.axes.clear()
        self.axes.imshow(self.images[self.index], interpolation="antialiased")
        self.axes.axis("off")
        count = f" ({self.index + 1} of {len(self.pictures)})" if len(self.pictures) > 1 else ""
        self.caption.set_text(f"{caption}{count}: {os.path.basename(path)}")
        self.figure.canvas.draw_idle()
