"""Brick ``lightcurves``: one gap-aware light curve per detected source, with its preview.

The core is :func:`mxt_pipeline.lightcurve.extract.extract_light_curves` (source
circle, background annulus without the other sources and the source's cross arms,
exposure from the GTIs, errors of the rates, the gaps with their origin) followed by
:func:`mxt_pipeline.lightcurve.preview.plot_light_curve` (error bars, gaps shaded and
labelled with their origin, upper limits).

Source region.  The radius encloses ``psf_fraction`` of the CALDB PSF at
``psf_energy_kev`` on axis (:func:`psf_encircled_fraction`): its surface density
``density(dy, dz, energy, theta)`` integrated on a polar grid (absolute fraction), or
the model's own ``encircled_fraction(r)`` when it has no density.  The PSF fraction
inside the circle corrects the rates: with ``psf_correction = spectral`` (default) the
fraction for each source's own spectrum (the spot holds less flux at high energy;
:func:`mxt_pipeline.lightcurve.extract.spectral_psf_fraction`), with ``fixed`` the
fraction at ``psf_energy_kev``.  The default fraction, 0.5, is about the MXT spot (which
holds 47% of the flux at 1.5 keV, the cross arms 43%, the halo 10%): a radius of 34
pixels (7.7') for the bundled CALDB, its background annulus (3 to 5 radii) on the chip
for a source near the boresight; a larger fraction takes in arm and halo photons at a
higher background cost.

XBAND-CP.  The trigger time of the ``{target}`` is stored in each product (TRIGTIME)
and the previews are drawn against the time since the trigger on log-log axes; the
burst's light curve comes first.  ``max_sources`` bounds the work in a crowded field
(sources are taken in source-list order, i.e. by decreasing DET_ML).

A source list without rows is a normal outcome: no light curve, the brick ends
SUCCESS (NO_DATA when the events have no good time).
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

from mxt_pipeline import constants as C
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.pipelines.brick import Brick, CoreResult
from mxt_pipeline.pipelines.bricks.burst import BURST_JSON
from mxt_pipeline.pipelines.bricks.codecs import L2_EVENTS, LIGHT_CURVES, SRCLIST, png_codec
from mxt_pipeline.pipelines.parameters import Parameter
from mxt_pipeline.pipelines.ports import MEMORY, Port

__all__ = ["LIGHTCURVES", "LIGHTCURVES_CALDB", "lightcurves_core", "psf_encircled_fraction", "source_order",
           "parse_src_ids"]

#: CALDB code names of the light curves (the PSF sizes the source circle).
LIGHTCURVES_CALDB = ("PSF",)



def psf_encircled_fraction(psf: Any, energy_kev: float, theta_arcmin: float = 0.0):
    """Encircled fraction ``eef(r_pixels)`` of a CALDB PSF model, or None without a usable
    PSF (:func:`mxt_pipeline.lightcurve.extract.psf_eef` at this energy and angle)."""
    # lazy: lightcurve.extract loads scipy (~150 modules), not for mxt --help or run --describe
    from mxt_pipeline.lightcurve.extract import psf_eef

    if psf is None:
        return None
    try:
        return psf_eef(psf, energy_kev, theta_arcmin)
    except MXTInputError:
        return None


def parse_src_ids(text: str) -> list[int]:
    """``'3,1'`` -> ``[3, 1]`` (the order is kept; duplicates are dropped)."""
    out: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            sid = int(item)
        except ValueError:
            raise MXTInputError(f"SRC_ID {item!r} is not an integer", keyword="lightcurves.src_ids") from None
        if sid not in out:
            out.append(sid)
    if not out:
        raise MXTInputError("no SRC_ID given", keyword="lightcurves.src_ids")
    return out


def source_order(srclist, burst: dict[str, Any] | None, max_sources: int) -> list[int]:
    """SRC_IDs to extract: the burst first (when identified), then by list order."""
    ids = [int(s) for s in srclist["SRC_ID"]] if len(srclist) else []
    if burst and burst.get("detected") and burst.get("source"):
        first = int(burst["source"]["src_id"])
        if first in ids:
            ids.remove(first)
            ids.insert(0, first)
    return ids[:max_sources]


def lightcurves_core(inputs: dict[str, Any], params, cal) -> CoreResult:
    """Light curves and previews of the detected sources (pure: bytes and objects out)."""
    # lazy: scipy and matplotlib (~300 modules) only when light curves are made, not for calibrate/detect (#18)
    from mxt_pipeline.lightcurve.extract import (
        extract_light_curves,
        fraction_vs_energy,
        source_region,
    )
    from mxt_pipeline.lightcurve.preview import plot_light_curve

    if not params.e_min < params.e_max:
        raise MXTInputError(f"empty energy band: e_min {params.e_min} keV is not below e_max {params.e_max} keV",
                            keyword="lightcurves.e_min")  # fmt: skip
    events = inputs["events"]
    table = inputs["srclist"].table
    target = inputs.get("target")
    trigger = getattr(target, "trigger_time", None)
    no_data = len(events) == 0 or events.gti.exposure <= 0
    if no_data or len(table) == 0:
        return CoreResult({"light_curves": {}, "lc_previews": {}}, no_data=no_data,
                          metrics={"n_light_curves": 0})  # fmt: skip
    eef = psf_encircled_fraction(cal.psf, params.psf_energy_kev)
    region = source_region(eef, fraction=params.psf_fraction, radius=params.radius_pix)
    if params.psf_correction == "spectral" and eef is not None:
        # The circle is sized at psf_energy_kev; its PSF fraction at every energy lets
        # each source's correction follow its own spectrum.
        region = replace(region, fraction_of_energy=fraction_vs_energy(cal.psf, region.radius))
    ids = source_order(table, inputs.get("burst"), params.max_sources)
    if params.src_ids is not None:
        wanted = parse_src_ids(params.src_ids)
        unknown = sorted(set(wanted) - {int(s) for s in table["SRC_ID"]})
        if unknown:
            raise MXTInputError(f"SRC_ID {unknown} not in the source list", keyword="lightcurves.src_ids")
        ids = wanted  # an explicit choice, in the order given, is not capped by max_sources
    options: dict[str, Any] = {}
    if params.binning == "snr":
        options = {"target_snr": params.target_snr, "min_counts": params.min_counts, "max_gap": params.max_gap_s}
    elif params.binning == "fixed":
        options = {"bin_width": params.bin_width_s}
    else:
        options = {"p0": params.p0}
    curves = extract_light_curves(events, table, binning_method=params.binning, region=region, e_min=params.e_min,
                                  e_max=params.e_max, error_method=params.error_method, src_ids=ids,
                                  dead_time_fraction=params.dead_time_fraction, **options)  # fmt: skip
    by_id = {int(lc.meta["SRC_ID"]): lc for lc in curves}
    obs_id = str(events.meta.get("OBS_ID", "unknown"))
    products: dict[str, Any] = {}
    previews: dict[str, bytes] = {}
    n_bins = {}
    for sid in ids:
        lc = by_id[sid]
        lc.meta.setdefault("OBS_ID", obs_id)
        if trigger is not None:
            lc.meta["TRIGTIME"] = float(trigger)
        key = f"src{sid}"
        products[key] = lc
        n_bins[key] = len(lc)
        if params.previews:
            buf = io.BytesIO()
            fig = plot_light_curve(lc, trigger_time=trigger, dpi=params.dpi)
            fig.savefig(buf, format="png", metadata={"Software": None})
            previews[key] = buf.getvalue()
    metrics = {
        "n_light_curves": len(products),
        "n_bins": n_bins,
        "source_radius_pix": region.radius,
        "source_radius_arcsec": region.radius * C.PIXEL_SCALE_ARCSEC,
        "psf_fraction": region.psf_fraction,
        "region_from": "CALDB PSF" if eef is not None else "default spot (no PSF model)",
    }
    return CoreResult({"light_curves": products, "lc_previews": previews or None}, metrics=metrics)


LIGHTCURVES = Brick(
    name="lightcurves",
    summary="gap-aware light curve of each source (MXT_LC) and its PNG preview",
    core=lightcurves_core,
    inputs=(
        Port("events", L2_EVENTS, "L2 events with GTI and GAPS"),
        Port("srclist", SRCLIST, "source list (positions of the sources)"),
        Port("target", MEMORY, "the {target}: trigger time of XBAND-CP", optional=True),
        Port("burst", BURST_JSON, "XBAND-CP: the identified burst (its light curve first)", optional=True),
    ),
    outputs=(
        Port("light_curves", LIGHT_CURVES, "one MXT_LC product per source"),
        Port("lc_previews", png_codec("mxt_lc_{obs_id}_{key}.png", many=True),
             "one PNG per light curve: error bars, gaps and their origin", optional=True),
    ),  # fmt: skip
    params=(
        Parameter("binning", str, "snr", "bins: constant S/N, fixed width or Bayesian blocks",
                  choices=("snr", "fixed", "blocks")),
        Parameter("target_snr", float, 3.0, "snr binning: S/N of each bin", minimum=0.5),
        Parameter("min_counts", int, 15, "snr binning: least source counts per bin", minimum=1),
        Parameter("max_gap_s", float, 1000.0, "snr binning: a bin never spans a gap longer than this (s)",
                  minimum=0.0),
        Parameter("bin_width_s", float, 10.0, "fixed binning: bin width (s)", minimum=C.FRAME_TIME_S),
        Parameter("p0", float, 0.05, "blocks binning: false-alarm probability of the prior",
                  minimum=1e-6, maximum=0.5),
        Parameter("e_min", float, C.ENERGY_MIN_KEV, "lower energy (keV)", minimum=0.0),
        Parameter("e_max", float, C.ENERGY_MAX_KEV, "upper energy (keV)", minimum=0.0),
        Parameter("psf_fraction", float, 0.5, "PSF fraction enclosed by the source circle",
                  minimum=0.3, maximum=0.99),
        Parameter("radius_pix", float, None, "source circle radius (sky pixels); null: from psf_fraction",
                  minimum=1.0, maximum=256.0, nullable=True),
        Parameter("dead_time_fraction", float, 0.0, "fraction of each 0.1 s frame lost to readout",
                  minimum=0.0, maximum=0.99),
        Parameter("src_ids", str, None, "only these sources, comma-separated SRC_IDs; null: every source",
                  nullable=True),
        Parameter("psf_energy_kev", float, 1.5, "energy at which the PSF sizes the circle (keV)",
                  minimum=0.2, maximum=10.0),
        Parameter("psf_correction", str, "spectral",
                  "PSF fraction of the rates: for each source's spectrum, or at psf_energy_kev",
                  choices=("spectral", "fixed")),
        Parameter("error_method", str, "frequentist", "errors of the rates",
                  choices=("frequentist", "gehrels", "kbn")),
        Parameter("max_sources", int, 20, "most light curves made (by decreasing DET_ML)", minimum=1, maximum=500),
        Parameter("previews", bool, True, "write the PNG previews"),
        Parameter("dpi", int, 100, "resolution of the previews", minimum=30, maximum=300),
    ),  # fmt: skip
    caldb=LIGHTCURVES_CALDB,
    critical=False,
)
