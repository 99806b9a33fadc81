"""Hypothesis strategies for random valid MXT products."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from mxt_pipeline.constants import GAP_ORIGINS, N_PIX, PHA_MAX
from mxt_pipeline.datamodel import GTI, Attitude, GapList, RawHits

finite_times = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def gtis(draw, max_size: int = 12) -> GTI:
    """Random GTIs (possibly empty; overlapping inputs get merged)."""
    n = draw(st.integers(0, max_size))
    starts = draw(st.lists(finite_times, min_size=n, max_size=n))
    widths = draw(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=n, max_size=n))
    return GTI(np.array(starts, dtype=float), np.array(starts, dtype=float) + np.array(widths, dtype=float))


@st.composite
def gap_lists(draw, max_size: int = 8) -> GapList:
    n = draw(st.integers(0, max_size))
    starts = np.array(draw(st.lists(finite_times, min_size=n, max_size=n)), dtype=float)
    widths = np.array(draw(st.lists(st.floats(1e-3, 1e5), min_size=n, max_size=n)), dtype=float)
    origins = draw(st.lists(st.sampled_from(GAP_ORIGINS), min_size=n, max_size=n))
    return GapList(starts, starts + widths, np.array(origins, dtype="U10"))


@st.composite
def raw_hits(draw, max_size: int = 200) -> RawHits:
    """A random valid pass of raw hits, sorted in time, with its GTI."""
    n = draw(st.integers(0, max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    t0 = draw(st.floats(0, 1e8))
    frames = np.sort(rng.integers(0, 10_000, n))
    time = t0 + frames * 0.1
    hits = RawHits.from_columns(
        meta={"OBS_ID": f"{seed % 100000:05d}", "PASS_ID": int(seed % 50), "STATION": "HBK", "FRAMETIM": 0.1},
        TIME=time,
        FRAME=frames.astype(np.int32),
        RAWY=rng.integers(0, N_PIX, n).astype(np.int16),
        RAWZ=rng.integers(0, N_PIX, n).astype(np.int16),
        PHA=rng.integers(0, PHA_MAX + 1, n).astype(np.int16),
    )
    hits.gti = GTI([t0], [t0 + 1000.1])
    return hits


@st.composite
def attitudes(draw, max_size: int = 30) -> Attitude:
    n = draw(st.integers(1, max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.5, 10.0, n))
    ra = rng.uniform(0, 360)
    dec = rng.uniform(-89, 89)
    roll = rng.uniform(0, 360)
    jitter = rng.normal(0, 1e-3, (3, n))
    return Attitude.from_pointing(
        t, (ra + jitter[0]) % 360, np.clip(dec + jitter[1], -89.9, 89.9), roll + jitter[2], meta={"OBS_ID": "00042"}
    )
