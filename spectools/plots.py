"""Pictures people look at: spectra with axes in 1/Å, layer-line overlays, profiles.

matplotlib is imported lazily with the non-interactive Agg backend, so the
library works on machines without a display.  Each picture has a function
that builds its figure (``*_figure``, for tests and notebooks) and one that
writes it as a PNG through :func:`spectools.io.atomic.atomic_output`.
"""
import numpy as np

from .io.atomic import atomic_output


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def display_scale(spectrum, centre_radius_px=3, percentiles=(1.0, 99.7)):
    """Log spectrum with the central spot suppressed, and robust contrast limits.

    The central spot (zero frequency and its immediate neighbourhood, which
    holds the mean and the mask's own transform) is replaced by the median
    of the ring just outside it, so it does not set the contrast.  Limits are
    percentiles of the log values outside that spot.

    Returns
    -------
    log : ndarray
    limits : (float, float)
    """
    size = spectrum.shape[-1]
    c = size // 2
    y, x = np.mgrid[:size, :size] - c
    r = np.hypot(x, y)
    logp = np.log10(np.maximum(spectrum, np.finfo(np.float32).tiny))
    spot = r <= centre_radius_px
    ring = (r > centre_radius_px) & (r <= centre_radius_px + 3)
    logp[spot] = np.median(logp[ring])
    lo, hi = np.percentile(logp[~spot], percentiles)
    return logp, (float(lo), float(hi))


def save_png(figure, path):
    """Write a figure as a PNG, atomically, and release it."""
    plt = _pyplot()
    with atomic_output(path, "wb") as fh:
        figure.savefig(fh, format="png")
    plt.close(figure)


def spectrum_png(path, spectrum, pixel_size_a, **options):
    """Write :func:`spectrum_figure` as a PNG."""
    save_png(spectrum_figure(spectrum, pixel_size_a, **options), path)


#: Length of the layer-line marks at the edges of a spectrum (no diameter), fraction of Nyquist.
EDGE_MARK = 0.08


def spectrum_figure(spectrum, pixel_size_a, *, axis="vertical", title="", overlay=None,
                    resolution_marks=(), centre_radius_px=3):
    """A spectrum on a log scale with robust contrast and axes in 1/Å.

    Parameters
    ----------
    spectrum : ndarray, (P, P)
        Centred spectrum (zero frequency at ``P//2``).
    pixel_size_a : float
        Real-space pixel size of the segments; the Fourier pixel is
        ``1 / (P * pixel_size_a)``.
    axis : {"vertical", "horizontal"}
        Orientation of the helical axis, for the overlay.
    overlay : list of dict, optional
        Output of :func:`layer_lines`: short marks at the first Bessel maxima
        of each layer line, or at the plot's edges when no diameter placed
        them.
    resolution_marks : iterable of float
        Resolutions (Å) drawn as dashed circles.
    """
    plt = _pyplot()
    nyquist = 0.5 / pixel_size_a
    fig, ax = plt.subplots(figsize=(7.2, 7.0), dpi=110)
    _draw_spectrum(ax, spectrum, pixel_size_a, centre_radius_px)
    ax.set_title(title or "averaged power spectrum (log scale)", fontsize=10)
    for res in resolution_marks:
        circle = plt.Circle((0, 0), 1.0 / res, fill=False, ls="--", lw=0.7, color="tab:cyan")
        ax.add_patch(circle)
        ax.text(0.7071 / res, 0.7071 / res, f"{res:g} Å", color="tab:cyan", fontsize=7)
    if overlay:
        _draw_overlay(ax, overlay, axis, nyquist)
    ax.set_xlim(-nyquist, nyquist)
    ax.set_ylim(-nyquist, nyquist)
    fig.tight_layout()
    return fig


def _draw_spectrum(ax, spectrum, pixel_size_a, centre_radius_px=3, limit=None):
    """The log spectrum on ``ax`` with axes in 1/Å (contrast from the part shown)."""
    size = spectrum.shape[-1]
    step = 1.0 / (size * pixel_size_a)
    lo_edge = -(size // 2 + 0.5) * step
    hi_edge = (size - size // 2 - 0.5) * step
    shown = spectrum
    if limit is not None:
        # contrast from the region shown, not from the noise outside it
        half = min(size // 2, int(np.ceil(limit / step)) + 1)
        c = size // 2
        shown = spectrum[c - half:c + half, c - half:c + half]
        lo_edge, hi_edge = -(half + 0.5) * step, (half - 0.5) * step
    logp, (vmin, vmax) = display_scale(shown, centre_radius_px)
    # Row 0 (ky most negative) at the bottom: ky increases upwards like y.
    ax.imshow(logp, cmap="gray", vmin=vmin, vmax=vmax, origin="lower",
              extent=(lo_edge, hi_edge, lo_edge, hi_edge), interpolation="nearest")
    ax.set_xlabel("spatial frequency kx (1/Å)")
    ax.set_ylabel("spatial frequency ky (1/Å)")


def _draw_overlay(ax, overlay, axis, extent, label_limit=None, both_sides=True):
    """Predicted layer lines: short ticks on each first Bessel maximum, with their order.

    Ticks centred on each predicted first maximum (or at the plot's two
    edges without a diameter) leave the data under them visible; with
    ``both_sides=False`` only the maxima at positive radius are drawn.
    """
    if label_limit is None:
        label_limit = 4.5 * min((abs(line["z"]) for line in overlay if line["z"]), default=0)
    for line in overlay:
        z, r = line["z"], line.get("r")
        half = 0.025 * extent if r is not None else EDGE_MARK * extent / 2
        if r is None:
            spots = [-extent + half, extent - half] if both_sides else [extent - half]
        else:
            spots = sorted({r, -r} if both_sides else {r})
        for spot in spots:
            a, b = (spot - half, spot + half)
            if axis == "vertical":
                ax.plot([a, b], [z, z], color="tab:orange", lw=0.8, alpha=0.8)
            else:
                ax.plot([z, z], [a, b], color="tab:orange", lw=0.8, alpha=0.8)
        if r is not None and 0 <= z <= label_limit:
            xy = (r, z) if axis == "vertical" else (z, r)
            ax.annotate(f"n={line['n']}", xy, fontsize=6, color="tab:orange",
                        xytext=(4, 2), textcoords="offset points")


def candidates_png(path, spectrum, pixel_size_a, panels, **options):
    """Write :func:`candidates_figure` as a PNG."""
    save_png(candidates_figure(spectrum, pixel_size_a, panels, **options), path)


def candidates_figure(spectrum, pixel_size_a, panels, *, limit=None, observed=()):
    """One spectrum (helical axis vertical) drawn once per candidate, side by side.

    Parameters
    ----------
    spectrum : ndarray, (P, P)
        Centred, helical axis vertical.
    pixel_size_a : float
    panels : list of (str, list of dict)
        Per candidate: a title and its predicted lines
        (:func:`spectools.ops.layer_lines.layer_lines`), drawn HILL's way.
    limit : float, optional
        Largest frequency shown, 1/Å (default Nyquist).
    observed : iterable of float
        Axial frequencies of the observed lines, marked at the left edge
        (the predictions are drawn on the right half only, so the left
        half shows the data alone).
    """
    plt = _pyplot()
    limit = limit or 0.5 / pixel_size_a
    count = max(1, len(panels))
    fig, axes = plt.subplots(1, count, figsize=(4.6 * count, 5.0), dpi=110, squeeze=False)
    for ax, (title, overlay) in zip(axes[0], panels or [("no candidate", [])]):
        _draw_spectrum(ax, spectrum, pixel_size_a, limit=limit)
        if overlay:
            _draw_overlay(ax, overlay, "vertical", limit, label_limit=limit, both_sides=False)
        for z in observed:
            for sign in (1, -1):
                ax.plot([-limit, -0.94 * limit], [sign * z] * 2, color="tab:cyan", lw=1.2)
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
        ax.set_title(title, fontsize=8)
    fig.suptitle("right: predicted layer lines (orange: first Bessel maxima, order n); left "
                 "edge: observed lines (cyan)", fontsize=8)
    fig.tight_layout()
    return fig


def profile_png(path, frequency, intensity, **options):
    """Write :func:`profile_figure` as a PNG."""
    save_png(profile_figure(frequency, intensity, **options), path)


def profile_figure(frequency, intensity, *, overlay=None, title=""):
    """A layer-line profile: log intensity versus axial frequency."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 3.6), dpi=110)
    keep = frequency >= 0
    ax.semilogy(frequency[keep], intensity[keep], lw=0.9, color="black")
    if overlay:
        for z in sorted({round(abs(line["z"]), 6) for line in overlay}):
            ax.axvline(z, color="tab:orange", lw=0.5, alpha=0.6)
    ax.set_xlabel("axial spatial frequency (1/Å)")
    ax.set_ylabel("summed power")
    ax.set_title(title or "layer-line profile", fontsize=10)
    fig.tight_layout()
    return fig


def thon_png(path, panel, extent, **options):
    """Write :func:`thon_figure` as a PNG."""
    save_png(thon_figure(panel, extent, **options), path)


def thon_figure(panel, extent, *, frequency=None, profile=None, background_subtracted=None,
                model=None, zeros=(), title="", band=None, fit_resolution_a=None):
    """CTFFIND-style picture: the 2D panel and, beside it, the 1D profiles.

    Parameters
    ----------
    panel, extent
        From :func:`spectools.ops.thon_rings.display_panel` (data left; model right when
        a CTF was given).
    frequency, profile, background_subtracted, model : ndarray, optional
        The rotational (or equiphase) average, its background-subtracted
        version and the model ``CTF^2`` (scaled to it), versus frequency.
    zeros : iterable of float
        Predicted CTF zeros (1/Å), drawn on both panels.
    band : (float, float), optional
        Frequencies (1/Å) whose values set the profile's y-ranges (the band
        shown), so the strong lowest frequencies do not flatten the rings;
        frequencies below it are shaded.
    fit_resolution_a : float, optional
        Marked on the profile: the resolution to which a CTF fit holds.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.6), dpi=100,
                             gridspec_kw={"width_ratios": [1, 1.25]})
    ax = axes[0]
    ax.imshow(panel, cmap="gray", origin="lower", extent=(-extent, extent, -extent, extent),
              interpolation="nearest")
    for z in zeros:
        ax.add_patch(plt.Circle((0, 0), z, fill=False, lw=0.4, ls=":", color="tab:orange"))
    ax.set_xlabel("kx (1/Å)")
    ax.set_ylabel("ky (1/Å)")
    ax.set_title("data" + (" | CTF² model" if model is not None else ""), fontsize=9)
    if frequency is not None:
        _thon_profiles(plt, axes[1], frequency, profile, background_subtracted, model, zeros,
                       extent, band, fit_resolution_a)
    fig.suptitle(title, fontsize=10)
    # Fixed margins rather than tight_layout, which costs more than the rest of the
    # figure (a batch writes one per micrograph).
    fig.subplots_adjust(left=0.06, right=0.93, bottom=0.1, top=0.9, wspace=0.22)
    return fig


def _thon_profiles(plt, ax, frequency, profile, background_subtracted, model, zeros, extent,
                   band, fit_resolution_a):
    """The 1D panel of :func:`thon_figure`, its y-ranges set by the values in ``band``."""
    keep = frequency > 0
    low, high = band if band is not None else (0.0, extent)
    shown = keep & (frequency >= low) & (frequency <= high)
    if background_subtracted is not None:
        ax.plot(frequency[keep], background_subtracted[keep], lw=0.9, color="black",
                label="background subtracted")
    if model is not None:
        ax.plot(frequency[keep], model[keep], lw=0.8, color="tab:orange", label="CTF² model")
    curves = [c[shown] for c in (background_subtracted, model) if c is not None]
    limits = _band_limits(np.concatenate(curves) if curves else np.array([]))
    if limits:
        ax.set_ylim(*limits)
    for z in zeros:
        ax.axvline(z, lw=0.5, ls=":", color="tab:orange")
    if low > 0:
        ax.axvspan(0, low, color="0.9", zorder=0)
    if fit_resolution_a:
        ax.axvline(1.0 / fit_resolution_a, lw=0.9, ls="--", color="tab:green",
                   label=f"fit holds to {fit_resolution_a:.1f} Å")
    ax.set_xlim(0, extent)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("background-subtracted amplitude")
    if profile is not None:
        twin = ax.twinx()
        twin.semilogy(frequency[keep], profile[keep], lw=0.6, color="tab:blue", alpha=0.6,
                      label="rotational average (power)")
        power = profile[shown]
        power = power[np.isfinite(power) & (power > 0)]
        if len(power):
            twin.set_ylim(power.min() / 1.2, power.max() * 1.2)
        twin.set_ylabel("power", color="tab:blue")
    ax.legend(loc="upper right", fontsize=7)


def _band_limits(values, margin=0.08):
    """y-limits holding the finite ``values`` with a margin, or None."""
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    lo, hi = float(values.min()), float(values.max())
    pad = margin * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


def contact_sheet(path, panels, titles, columns=4):
    """Write :func:`contact_sheet_figure` as a PNG."""
    save_png(contact_sheet_figure(panels, titles, columns), path)


def contact_sheet_figure(panels, titles, columns=4):
    """Several 2D panels (from ``display_panel``) on one page."""
    plt = _pyplot()
    rows = int(np.ceil(len(panels) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.2 * rows), dpi=90,
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (panel, extent), title in zip(axes.ravel(), panels, titles):
        ax.imshow(panel, cmap="gray", origin="lower", extent=(-extent, extent, -extent, extent))
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    return fig


def histogram_png(path, panels, **options):
    """Write :func:`histogram_figure` as a PNG."""
    save_png(histogram_figure(panels, **options), path)


def histogram_figure(panels, *, title="", bins=40):
    """Histograms side by side: ``panels`` is a list of ``(label, values)``."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), dpi=100,
                             squeeze=False)
    for ax, (label, values) in zip(axes[0], panels):
        values = np.asarray(values, float)
        ax.hist(values, bins=bins, color="0.3")
        ax.set_xlabel(label)
        ax.set_ylabel("segments")
        if len(values):
            ax.set_title(f"RMS {np.sqrt(np.mean(values ** 2)):.3g}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def parity_png(path, phase_deg, weight, pixel_size_a, **options):
    """Write :func:`parity_figure` as a PNG."""
    save_png(parity_figure(phase_deg, weight, pixel_size_a, **options), path)


def parity_figure(phase_deg, weight, pixel_size_a, *, title="", limit=None):
    """The parity map in two colours: blue near 0 degrees (even Bessel orders), red near
    180 (odd); saturation ``|cos(phase)|``, brightness the log weight (robust contrast)."""
    plt = _pyplot()
    phase = np.deg2rad(np.asarray(phase_deg, float))
    logw, (lo, hi) = display_scale(np.asarray(weight, float))
    value = np.clip((logw - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    c = np.cos(phase)
    rgb = np.empty(phase.shape + (3,))
    grey = 1.0 - np.abs(c)
    rgb[..., 0] = np.where(c < 0, 1.0, grey)      # odd: red
    rgb[..., 2] = np.where(c >= 0, 1.0, grey)     # even: blue
    rgb[..., 1] = grey
    rgb *= value[..., None]
    size = phase.shape[-1]
    half = 0.5 / pixel_size_a
    fig, ax = plt.subplots(figsize=(6.4, 6.4), dpi=100)
    ax.imshow(rgb, origin="lower", extent=(-half, half, -half, half), interpolation="nearest")
    if limit:
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
    ax.set_xlabel("1/Å")
    ax.set_ylabel("1/Å")
    ax.set_title(title or f"phase across the meridian ({size} px): blue 0° (even n), "
                          "red 180° (odd n)", fontsize=9)
    fig.tight_layout()
    return fig
