"""A GRB afterglow observed through orbit gaps: a real Swift-XRT template when the data
are present (read through :func:`mxt_pipeline.datapaths.swift_xrt_dir`), else the
analytic canonical afterglow of the simulator (:class:`CanonicalGRB`).

Used by the tests and to draw the example preview of ``reports/examples/``.
"""

from __future__ import annotations

import numpy as np

from mxt_pipeline.datamodel import GTI, EventList, GapList
from mxt_pipeline.datapaths import swift_xrt_dir
from mxt_pipeline.simulate.timeprofiles import (
    CanonicalGRB,
    SwiftTemplate,
    TimeProfile,
    read_swift_lightcurve,
)

from .simulated import gti_from_gaps, make_event_list, orbit_gaps

TEMPLATE = "GRB_061121"
#: Observation: from DELAY to DELAY + DURATION seconds after the trigger (MET 0).
DELAY = 300.0
DURATION = 20000.0
#: MXT counts/s of the source at the start of the observation (both profiles).
PEAK_RATE = 4.0


def grb_profile() -> tuple[TimeProfile, str]:
    """The template (Swift-XRT when available) and its label; trigger at MET 0."""
    data = swift_xrt_dir()
    if data is not None:
        lc = read_swift_lightcurve(TEMPLATE, data)
        prof = SwiftTemplate(name=TEMPLATE, trigger_time=0.0, times=lc.time, rates=lc.rate, t_lo=lc.time_lo,
                             t_hi=lc.time_hi)  # fmt: skip
        return prof, f"Swift-XRT {TEMPLATE}"
    return CanonicalGRB(trigger_time=0.0), "canonical afterglow (analytic)"


def grb_observation(seed: int = 5) -> tuple[EventList, GTI, TimeProfile, float, str]:
    """Events of the burst (at RAW 128, 128) and a faint flat background, with gaps.

    Returns the event list, its GTIs, the profile, the scale from profile to MXT counts/s
    and the label.
    """
    prof, label = grb_profile()
    t0, t1 = DELAY, DELAY + DURATION
    scale = PEAK_RATE / float(prof.bound(np.array([t0]), np.array([t1]))[0])
    gaps = orbit_gaps(t1, period=5700.0, earth=1500.0, saa_every=2)
    gti = gti_from_gaps(t0, t1, gaps)
    keep = gaps.stop > t0  # gaps before the observation are not part of it
    gaps = GapList(np.maximum(gaps.start[keep], t0), gaps.stop[keep], gaps.origin[keep])
    bound = float(prof.bound(np.array([t0]), np.array([t1]))[0]) * scale
    rng = np.random.default_rng(seed)
    events = make_event_list(gti, gaps, rng, sources=[(128.0, 128.0, lambda t: scale * prof.value(t), bound)],
                             bkg_rate=0.05)  # fmt: skip
    events.meta["OBJECT"] = TEMPLATE
    return events, gti, prof, scale, label


def expected_rates(prof: TimeProfile, scale: float, lo: np.ndarray, hi: np.ndarray, gti: GTI) -> np.ndarray:
    """Mean source rate over the good time of each bin (the truth a rate estimates)."""
    out = np.empty(lo.size)
    for i, (a, b) in enumerate(zip(lo, hi)):
        s = np.maximum(gti.start, a)
        e = np.minimum(gti.stop, b)
        ok = e > s
        total = sum(prof.integral(x, y) for x, y in zip(s[ok], e[ok]))
        out[i] = scale * total / np.sum(e[ok] - s[ok])
    return out
