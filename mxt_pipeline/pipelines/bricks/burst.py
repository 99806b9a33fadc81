"""Brick ``burst`` (XBAND-CP): which detected source is the burst of the trigger.

The trigger (ECLAIRs, or an external alert) gives a position with a 90% radius; the
spacecraft slews to put it near the MXT boresight.  The burst is the detected source
that is compatible with the trigger position: its distance ``d`` to the trigger must
satisfy ``d <= k * sqrt(R_trig^2 + R90^2)`` (both 90% radii, added in quadrature as
for two independent circular errors); among compatible sources the one with the
highest DET_ML wins (a fading afterglow is normally the brightest source of a
GRB field).  ``k`` (``match_factor``) defaults to 1.5: for two-dimensional Gaussian
errors the 90% radius is 2.146 sigma, so 1.5 R90 is 3.2 sigma of the combined error
(a true counterpart is missed about 0.6% of the time).

Without a trigger position (``mxt run`` on a dataset with no ``--burst-ra``), the
nominal pointing is used with a radius of ``default_radius_arcmin`` (the MXT field is
about 57' across, so 30' covers the field).

The result, ``mxt_burst_<OBS_ID>.json``, is a *fast product*: it is published in
``OUT/fast/`` as soon as it is written, before the light curves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mxt_pipeline.detect.srclist import NOT_IN_FIELD
from mxt_pipeline.geometry import angular_separation_arcsec
from mxt_pipeline.pipelines.brick import Brick, CoreResult
from mxt_pipeline.pipelines.bricks.codecs import L2_EVENTS, SRCLIST
from mxt_pipeline.pipelines.parameters import Parameter
from mxt_pipeline.pipelines.ports import MEMORY, Port, json_codec

__all__ = ["BURST", "BURST_JSON", "match_burst", "burst_core"]


#: The burst document (a fast product of XBAND-CP).
BURST_JSON = json_codec("mxt_burst_{obs_id}.json", role="product")


def match_burst(table, ra: float, dec: float, radius_arcsec: float, factor: float) -> tuple[int | None, np.ndarray]:
    """Index of the burst in a source table (None when no source is compatible).

    A source whose position is not an in-field one (``FLAGS`` bits off the chip, in a
    masked area or out of the field) is never the burst; the fainter member of a
    confused pair (PAIR) is an in-field source and may be.
    Returns the index and the distances of every source to the trigger (arcsec).
    """
    if len(table) == 0:
        return None, np.zeros(0)
    d = angular_separation_arcsec(table["RA"], table["DEC"], ra, dec)
    allowed = factor * np.hypot(radius_arcsec, np.asarray(table["ERR_R90"], float))
    usable = d <= allowed
    if "FLAGS" in table.colnames:
        usable &= (np.asarray(table["FLAGS"]).astype(np.int64) & NOT_IN_FIELD) == 0
    ok = np.flatnonzero(usable)
    if ok.size == 0:
        return None, d
    best = ok[np.argmax(np.asarray(table["DET_ML"], float)[ok])]
    return int(best), d


def burst_core(inputs: dict[str, Any], params, cal) -> CoreResult:
    """Identify the burst among the detected sources (pure)."""
    src = inputs["srclist"]
    target = inputs.get("target")
    events = inputs["events"]
    bp = getattr(target, "burst_position", None)
    if bp is not None:
        ra, dec = bp.ra, bp.dec
        radius = (bp.error_radius_arcmin if bp.error_radius_arcmin is not None else params.default_radius_arcmin) * 60.0
        origin = "trigger"
    else:
        ra, dec = float(events.meta["RA_NOM"]), float(events.meta["DEC_NOM"])
        radius = params.default_radius_arcmin * 60.0
        origin = "pointing"
    table = src.table
    idx, dist = match_burst(table, ra, dec, radius, params.match_factor)
    doc: dict[str, Any] = {
        "obs_id": src.obs_id,
        "burst_id": getattr(target, "burst_id", None),
        "trigger_time": getattr(target, "trigger_time", None),
        "trigger": {"ra": ra, "dec": dec, "error_radius_arcmin": radius / 60.0, "origin": origin},
        "detected": idx is not None,
        "n_sources_in_field": len(table),
    }
    warnings = []
    if idx is not None:
        row = table[idx]
        doc["source"] = {
            "src_id": int(row["SRC_ID"]),
            "ra": float(row["RA"]),
            "dec": float(row["DEC"]),
            "err_r68_arcsec": float(row["ERR_R68"]),
            "err_r90_arcsec": float(row["ERR_R90"]),
            "qf": int(row["QF"]),
            "det_ml": float(row["DET_ML"]),
            "rate": float(row["RATE"]),
            "rate_err": float(row["RATE_ERR"]),
            "offset_from_trigger_arcsec": float(dist[idx]),
        }
    elif len(events) and events.gti.exposure > 0:
        warnings.append("no detected source is compatible with the trigger position")
    metrics = {"burst_detected": idx is not None, "offset_from_trigger_arcsec": None if idx is None else float(dist[idx])}
    return CoreResult({"burst": doc}, no_data=len(events) == 0, warnings=warnings, metrics=metrics)


BURST = Brick(
    name="burst",
    summary="identify the burst of the trigger among the detected sources (fast product)",
    core=burst_core,
    inputs=(
        Port("srclist", SRCLIST, "source list"),
        Port("events", L2_EVENTS, "L2 events (nominal pointing when the trigger gives no position)"),
        Port("target", MEMORY, "the {target}: burst id, trigger time and position", optional=True),
    ),
    outputs=(Port("burst", BURST_JSON,
                  "the burst: MXT position, R90, QF, offset from the trigger"),),  # fmt: skip
    params=(
        Parameter("match_factor", float, 1.5, "distance allowed, in units of the combined 90% radius", minimum=0.1),
        Parameter("default_radius_arcmin", float, 30.0, "trigger radius when none is given (arcmin)", minimum=0.1),
    ),
    early=True,
)
