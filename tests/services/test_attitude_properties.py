"""Properties of the attitude service's pure rules: the rows served for a range, and the
gaps the client reports (which must be the screening's ATTITUDE gaps)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mxt_pipeline.attitude.archive import rows_for_range
from mxt_pipeline.calib.screening import ScreeningParams, attitude_bad_times
from mxt_pipeline.datamodel import GTI, Attitude
from mxt_pipeline.services.attitude import attitude_gaps

steps = st.lists(st.floats(0.5, 200.0, allow_nan=False), min_size=1, max_size=30)
ends = st.tuples(st.floats(-100.0, 3000.0, allow_nan=False), st.floats(0.0, 1500.0, allow_nan=False))


def _times(deltas) -> np.ndarray:
    return np.cumsum(np.asarray(deltas, dtype=float))


@given(steps, ends)
def test_rows_cover_the_range_with_one_sample_either_side(deltas, span):
    t = _times(deltas)
    tstart, tstop = span[0], span[0] + span[1]
    i0, i1 = rows_for_range(t, tstart, tstop)
    served = t[i0 : i1 + 1]
    inside = t[(t >= tstart) & (t <= tstop)]
    assert set(inside) <= set(served)  # every sample of the range
    before, after = t[t < tstart], t[t > tstop]
    # One sample before tstart (the last one) unless a sample lies exactly on it, none earlier.
    if before.size and not np.any(t == tstart):
        assert served[0] == before[-1]
    else:
        assert served[0] >= tstart or i0 == 0
    if after.size and not np.any(t == tstop):
        assert served[-1] == after[0]
    else:
        assert served[-1] <= tstop or i1 == t.size - 1
    assert np.count_nonzero(served < tstart) <= 1 and np.count_nonzero(served > tstop) <= 1


@settings(max_examples=60, deadline=None)
@given(steps, ends, st.floats(1.0, 120.0))
def test_client_gaps_are_the_screening_s_attitude_gaps(deltas, span, max_gap):
    t = 3.0e8 + _times(deltas)
    tstart, tstop = 3.0e8 + span[0], 3.0e8 + span[0] + span[1]
    att = Attitude.from_pointing(t, np.full(t.size, 10.0), np.full(t.size, -5.0), np.zeros(t.size))
    _, no_att = attitude_bad_times(att, tstart, tstop, ScreeningParams(max_attitude_gap_s=max_gap))
    gaps = attitude_gaps(t, tstart, tstop, max_gap)
    got = GTI([a for a, _ in gaps], [b for _, b in gaps]) if gaps else GTI.empty()
    assert abs(got.exposure - no_att.exposure) <= 1e-6 * max(1.0, span[1])
    assert got.subtract(no_att).exposure <= 1e-6 and no_att.subtract(got).exposure <= 1e-6
