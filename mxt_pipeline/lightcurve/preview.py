"""PNG previews of light curves: asymmetric error bars, gaps shaded with their origin.

The figure is drawn on matplotlib's Agg canvas directly (no pyplot state, safe in
workers).  Gaps are shaded in a colour per origin (SAA, EARTH, TELEMETRY, SLEW, ...)
and labelled in the plot; bins with no net detection can be drawn as upper limits
(Kraft, Burrows & Nousek 1991 at three sigma, background from the bin's background
rate).  GRBs are drawn on log-log axes of the time since the trigger.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from mxt_pipeline.datamodel.mission_time import met_to_isot
from mxt_pipeline.lightcurve.poisson_errors import kraft_burrows_nousek
from mxt_pipeline.lightcurve.rates import LightCurve

__all__ = ["GAP_COLOURS", "UPPER_LIMIT_LEVEL", "upper_limits", "plot_light_curve", "figure_png"]

#: Shading of each gap origin.
GAP_COLOURS = {
    "SAA": "#d62728",
    "EARTH": "#1f77b4",
    "TELEMETRY": "#9467bd",
    "SLEW": "#ff7f0e",
    "ATTITUDE": "#8c564b",
    "BADFRAME": "#7f7f7f",
    "OTHER": "#bcbd22",
}
#: Probability content of the upper limits (three sigma, two-sided normal equivalent).
UPPER_LIMIT_LEVEL = 0.9973


def upper_limits(lc: LightCurve, level: float = UPPER_LIMIT_LEVEL) -> np.ndarray:
    """Upper limit on the net rate of every bin (KBN, background known from the bin)."""
    b = np.maximum(lc.bkg_rate * lc.exposure, 0.0)
    _, s_hi = kraft_burrows_nousek(lc.counts, b, level)
    psf = float(lc.meta.get("PSFFRAC", 1.0))
    return s_hi / (lc.exposure * psf)


def _shade_gaps(ax, lc: LightCurve, t0: float, log_x: bool, xmin: float, xmax: float) -> list[str]:
    shown: list[str] = []
    for start, stop, origin in zip(lc.gaps.start, lc.gaps.stop, lc.gaps.origin):
        a, b = start - t0, stop - t0
        if log_x:
            if b <= 0:
                continue
            a = max(a, xmin)
        if b < xmin or a > xmax:
            continue
        a, b = max(a, xmin), min(b, xmax)
        colour = GAP_COLOURS.get(str(origin), GAP_COLOURS["OTHER"])
        ax.axvspan(a, b, color=colour, alpha=0.18, lw=0, zorder=0)
        centre = np.sqrt(a * b) if log_x else 0.5 * (a + b)
        ax.text(centre, 0.98, str(origin), transform=ax.get_xaxis_transform(), rotation=90,
                ha="center", va="top", fontsize=7, color=colour, clip_on=True)  # fmt: skip
        if origin not in shown:
            shown.append(str(origin))
    return shown


def plot_light_curve(
    lc: LightCurve,
    *,
    trigger_time: float | None = None,
    show_upper_limits: bool = True,
    title: str | None = None,
    dpi: int = 110,
) -> Figure:
    """Draw a light curve (a figure in memory; :func:`figure_png` gives its PNG bytes).

    Parameters
    ----------
    lc : LightCurve
        The light curve (bins, rates, errors, gaps).
    trigger_time : float, optional
        GRB trigger (s since MJDREF): log-log axes of the time since the trigger.
        Default ``lc.meta['TRIGTIME']`` when present, else linear axes of the time
        since the first GTI start.
    show_upper_limits : bool
        Draw bins whose net rate is not above zero (or whose lower error reaches zero)
        as three-sigma upper limits.
    title : str, optional
        Figure title (default: source and observation).
    dpi : int
        Resolution of the figure (and of its PNG).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if trigger_time is None and "TRIGTIME" in lc.meta:
        trigger_time = float(lc.meta["TRIGTIME"])
    log = trigger_time is not None
    t0 = float(trigger_time) if log else (lc.gti.tstart if len(lc.gti) else float(lc.lo[0]) if len(lc) else 0.0)
    fig = Figure(figsize=(9.0, 4.5), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = lc.time - t0
    xerr = 0.5 * lc.timedel
    rate = lc.rate
    weak = (rate <= 0) | (rate - lc.err_lo <= 0)
    if log:
        weak |= x - xerr <= 0
    detected = ~weak if show_upper_limits else (rate > 0 if log else np.ones(len(lc), bool))
    if log:
        detected &= x - xerr > 0
    ax.errorbar(x[detected], rate[detected], xerr=xerr[detected],
                yerr=[lc.err_lo[detected], lc.err_hi[detected]], fmt="o", ms=3, lw=1,
                color="k", ecolor="0.25", label="net rate", zorder=3)  # fmt: skip
    if show_upper_limits and np.any(weak):
        ul = upper_limits(lc)
        sel = weak & ((x - xerr > 0) if log else True)
        ax.errorbar(x[sel], ul[sel], xerr=xerr[sel], yerr=0.3 * ul[sel] if not log else ul[sel] * 0.4,
                    uplims=True, fmt="none", ecolor="tab:blue", lw=1, label="3-sigma upper limit",
                    zorder=2)  # fmt: skip
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
        xmin = max(float(np.min((x - xerr)[x - xerr > 0])) if np.any(x - xerr > 0) else 1.0, 1e-3)
        # A gap before the first bin (the final slew at the start of a GRB observation)
        # stays in view, so that its origin can be read.
        g_start = lc.gaps.start - t0
        early = (g_start > 0) & (g_start < xmin)
        if np.any(early):
            xmin = float(np.min(g_start[early]))
        xmax = float(np.max(x + xerr)) if len(lc) else 10.0
        ax.set_xlabel("time since trigger (s)")
        # Plain numbers (0.3, 2, 1000) on the log axes, not 3x10^-1 in mathtext.
        from matplotlib.ticker import FuncFormatter

        plain = FuncFormatter(lambda v, _pos: f"{v:g}")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(FuncFormatter(lambda v, _pos: f"{v:g}" if str(f"{v:g}")[0] in "25" else ""))
    else:
        xmin = 0.0
        xmax = float(np.max(lc.hi - t0)) if len(lc) else 1.0
        if len(lc.gti):
            xmax = max(xmax, lc.gti.tstop - t0)
        # A date people read, not a mission-time number: "since 2026-07-05T05:25:34 TT".
        ax.set_xlabel(f"time since the start of the good time, {met_to_isot(t0)[:19]} TT (s)")
    ax.set_xlim(xmin, xmax * (1.3 if log else 1.0))
    shown = _shade_gaps(ax, lc, t0, log, xmin, xmax * (1.3 if log else 1.0))
    ax.set_ylabel("net count rate (counts/s)")
    if not log:
        ax.axhline(0.0, color="0.6", lw=0.6, zorder=1)
    handles, labels = ax.get_legend_handles_labels()
    for origin in shown:
        handles.append(Patch(color=GAP_COLOURS.get(origin, GAP_COLOURS["OTHER"]), alpha=0.3))
        labels.append(f"gap: {origin}")
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0.0, framealpha=0.9)  # fmt: skip
    if title is None:
        src = lc.meta.get("SRC_ID", "?")
        obs = lc.meta.get("OBS_ID", "")
        band = ""
        if "E_MIN" in lc.meta and "E_MAX" in lc.meta:
            band = f", {float(lc.meta['E_MIN']):g}-{float(lc.meta['E_MAX']):g} keV"
        binning = str(lc.meta.get("BINNING", "")).lower()
        title = f"MXT {obs} source {src}{band}" + (f" ({binning} bins)" if binning else "")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def figure_png(fig: Figure) -> bytes:
    """PNG bytes of a figure, without the software-version metadata (reproducible bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, metadata={"Software": None})
    return buf.getvalue()
