"""Plots of a one-run comparison (``mxt compare``): positions, light curves, lines."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from mxt_pipeline.campaign.truth_match import profile_bin_means
from mxt_pipeline.io.fits import atomic_write_bytes, met_to_isot
from mxt_pipeline.simulate.timeprofiles import profile_from_dict

__all__ = ["comparison_plots"]


def _figure(figsize: tuple[float, float]) -> Figure:
    """A figure on its own Agg canvas: no pyplot state, no global backend (safe in workers)."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


def _positions(result: Mapping[str, Any], path: Path) -> Path:
    found = [s for s in result["sources"] if s["found"]]
    fig = _figure((5.0, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    lim = 30.0
    for s in found:
        dra = (s["found_ra"] - s["true_ra"] + 180.0) % 360.0 - 180.0
        dx = dra * np.cos(np.radians(s["true_dec"])) * 3600.0
        dy = (s["found_dec"] - s["true_dec"]) * 3600.0
        r90 = s["err_r90_arcsec"] or 0.0
        ax.plot(dx, dy, "o", label=f"{s['name']} ({s['offset_arcsec']:.1f}\")")
        ax.add_patch(Circle((dx, dy), r90, fill=False, ls="--"))
        lim = max(lim, abs(dx) + r90, abs(dy) + r90)
    ax.add_patch(Circle((0, 0), 120.0, fill=False, color="r", lw=1))
    ax.plot(0, 0, "k+", ms=12)
    lim = min(max(lim * 1.1, 130.0), 600.0)
    ax.set_xlim(lim, -lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("measured - true, East (arcsec)")
    ax.set_ylabel("measured - true, North (arcsec)")
    ax.set_title("positions: 90% error circles R90 (dashed), 2' requirement (red)", fontsize=10)
    if found:
        ax.legend(fontsize=8)
    return _save(fig, path)


def _light_curve(rec: Mapping[str, Any], lc, profile, gti, path: Path) -> Path:
    fig = _figure((6.4, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    t0 = float(lc.lo[0]) if len(lc) else 0.0
    t = np.asarray(lc.time) - t0
    ax.errorbar(t, lc.rate, yerr=[lc.err_lo, lc.err_hi], xerr=0.5 * np.asarray(lc.timedel), fmt="o", ms=3,
                label="measured")  # fmt: skip
    comp = rec["light_curve"]
    if comp and np.isfinite(comp["norm"]):
        model = comp["norm"] * profile_bin_means(profile, lc.lo, lc.hi, gti if gti is not None else lc.gti)
        ax.step(t, model, where="mid", color="C1",
                label=f"simulated profile x {comp['norm']:.3g}  chi2/dof {comp['chi2_red']:.2f}")  # fmt: skip

    # A date people read, not a mission-time float ("time - 300000000.0").
    ax.set_xlabel(f"time since the first bin's start, {met_to_isot(t0)[:19]} TT (s)")
    ax.set_ylabel("rate (counts/s)")
    ax.set_title(f"{rec['name']}: light curve against the simulated profile")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _lines(lines, energies: np.ndarray, window: float, path: Path) -> Path:
    fig = _figure((4.0 * len(lines), 3.6))
    axes = fig.subplots(1, len(lines), squeeze=False)
    for ax, ln in zip(axes[0], lines):
        e0 = ln["energy_kev"]
        edges = np.arange(e0 - window, e0 + window + 1e-9, 0.005)
        ax.hist(energies, bins=edges, histtype="step", label="events")
        ax.axvline(e0, color="k", lw=1, label="line energy")
        if np.isfinite(ln["measured_kev"]):
            ax.axvline(ln["measured_kev"], color="C1", ls="--",
                       label=f"fit: {ln['residual_ev']:+.1f} +- {ln['error_ev']:.1f} eV")  # fmt: skip
        ax.set_xlabel("energy (keV)")
        ax.legend(fontsize=7)
    return _save(fig, path)


def comparison_plots(
    result: Mapping[str, Any],
    truth: Mapping[str, Any],
    out_dir: str | Path,
    *,
    light_curves: Mapping[int, Any] | None = None,
    energies_kev: np.ndarray | None = None,
    gti=None,
) -> list[Path]:
    """Write the PNG plots of a comparison record and return their paths.

    ``positions.png`` (measured minus true positions with the R90 circles and the 2'
    requirement), ``lc_<name>.png`` per source with a light curve (rates and the scaled
    simulated profile), ``lines.png`` (calibration lines and the fitted centroids).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [_positions(result, out / "positions.png")]
    for rec, src in zip(result["sources"], truth.get("sources", [])):
        if rec["light_curve"] and light_curves and rec["src_id"] in light_curves:
            safe = "".join(c if c.isalnum() else "_" for c in str(rec["name"]))
            paths.append(_light_curve(rec, light_curves[rec["src_id"]], profile_from_dict(src["profile"]), gti,
                                      out / f"lc_{safe}.png"))  # fmt: skip
    if result.get("lines") and energies_kev is not None:
        window = float(result.get("tolerances", {}).get("line_window_kev", 0.3))
        paths.append(_lines(result["lines"], energies_kev, window, out / "lines.png"))
    return paths
