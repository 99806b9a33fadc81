"""Hypothesis strategies: L1 raw passes and attitude tables in the ranges of the L1 formats."""

from __future__ import annotations

import numpy as np
from astropy.table import Table
from hypothesis import strategies as st

from mxt_pipeline import constants as C
from mxt_pipeline.datamodel import GTI, Attitude, RawHits


@st.composite
def raw_passes(draw, max_hits: int = 2500) -> RawHits:
    """One pass: hits sorted by TIME (the L1 format), frames of any size, runs of any length."""
    n = draw(st.integers(0, max_hits))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    t0 = draw(st.floats(1.0, 1e9, allow_nan=False))
    # Few distinct times so that big frames (several packets) and shared times occur.
    n_times = draw(st.integers(1, max(1, n)))
    times = np.sort(t0 + rng.choice(np.arange(n_times) * 0.1 + rng.random(n_times) * 1e-3, size=n))
    frame = rng.integers(0, 2**31 - 1, n).astype(np.int32)
    frame = np.sort(frame) if draw(st.booleans()) else frame
    table = Table({
        "TIME": times,
        "FRAME": frame,
        "RAWY": rng.integers(0, C.N_PIX, n).astype(np.int16),
        "RAWZ": rng.integers(0, C.N_PIX, n).astype(np.int16),
        "PHA": rng.integers(0, C.PHA_MAX + 1, n).astype(np.int16),
    })
    k = draw(st.integers(0, 3))
    edges = np.sort(rng.random(2 * k)) * 100.0 + t0 - 1.0
    gti = GTI(edges[0::2], edges[1::2]) if k else GTI.empty()
    meta = {"OBS_ID": draw(st.text("ABCDEFGH0123456789", min_size=1, max_size=16)),
            "PASS_ID": draw(st.integers(0, 65535)),
            "STATION": draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=16)),
            "FRAMETIM": draw(st.sampled_from([0.1, 0.05, 1.0]))}
    if draw(st.booleans()):
        meta["OBJECT"] = draw(st.text("abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=32)).strip() or "GRB"
    return RawHits(table, gti=gti, meta=meta)


@st.composite
def attitudes(draw, max_samples: int = 200) -> Attitude:
    n = draw(st.integers(0, max_samples))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t = np.cumsum(rng.random(n) + 1e-3) + draw(st.floats(0.0, 1e9))
    ra, dec, roll = rng.random(n) * 360, rng.random(n) * 180 - 90, rng.random(n) * 360
    if n == 0:
        return Attitude(Table({"TIME": np.empty(0), "QPARAM": np.empty((0, 4)), "RA": np.empty(0),
                               "DEC": np.empty(0), "ROLL": np.empty(0)}))
    return Attitude.from_pointing(t, ra, dec, roll)
