"""GTI and gap algebra against a brute-force evaluation on a fine time grid."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.datamodel import GTI, GapList
from mxt_pipeline.errors import MXTInputError

small = st.lists(
    st.tuples(st.integers(0, 100), st.integers(0, 30)), min_size=0, max_size=8
)


def _gti(pairs):
    return GTI([a for a, _ in pairs], [a + w for a, w in pairs])


def _mask(gti: GTI, grid: np.ndarray) -> np.ndarray:
    """Brute force: a grid point is good when any interval holds it."""
    m = np.zeros(grid.shape, bool)
    for a, b in zip(gti.start, gti.stop):
        m |= (grid >= a) & (grid < b)
    return m


GRID = np.arange(-5, 140, 0.25) + 0.125


@given(small)
def test_normalised_disjoint_sorted(pairs):
    g = _gti(pairs)
    assert np.all(g.stop > g.start)
    assert np.all(g.start[1:] > g.stop[:-1])
    raw = np.zeros(GRID.shape, bool)
    for a, w in pairs:
        raw |= (GRID >= a) & (GRID < a + w)
    assert np.array_equal(g.contains(GRID), raw)


@given(small, small)
def test_set_operations(p1, p2):
    a, b = _gti(p1), _gti(p2)
    ma, mb = a.contains(GRID), b.contains(GRID)
    assert np.array_equal(a.intersect(b).contains(GRID), ma & mb)
    assert np.array_equal(a.union(b).contains(GRID), ma | mb)
    assert np.array_equal(a.subtract(b).contains(GRID), ma & ~mb)
    comp = a.complement(-5, 140)
    assert np.array_equal(comp.contains(GRID), ~ma)
    assert a.intersect(b).exposure <= min(a.exposure, b.exposure) + 1e-9


@given(small, st.lists(st.tuples(st.floats(-10, 150), st.floats(0, 60)), min_size=1, max_size=10))
def test_overlap_matches_brute_force(pairs, windows):
    g = _gti(pairs)
    lo = np.array([w[0] for w in windows])
    hi = lo + np.array([w[1] for w in windows])
    got = g.overlap(lo, hi)
    want = [sum(max(0.0, min(b, h) - max(a, lw)) for a, b in zip(g.start, g.stop)) for lw, h in zip(lo, hi)]
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_invalid_inputs():
    with pytest.raises(MXTInputError):
        GTI([0.0, np.nan], [1.0, 2.0])
    with pytest.raises(MXTInputError):
        GTI([0.0], [1.0, 2.0])
    with pytest.raises(MXTInputError, match="unknown gap origin"):
        GapList([0.0], [1.0], ["COFFEE"])


def test_gaps_keep_origins():
    gaps = GapList([10, 0, 5], [20, 3, 8], ["SAA", "TELEMETRY", "EARTH"])
    assert list(gaps.origin) == ["TELEMETRY", "EARTH", "SAA"]
    saa = gaps.of_origin("SAA")
    assert (saa.start[0], saa.stop[0]) == (10, 20)
    merged = GapList.from_bad_time(GTI([1, 2], [4, 6]), "SLEW")
    assert len(merged) == 1 and merged.origin[0] == "SLEW"
    assert gaps.concat(merged).as_bad_time().exposure == pytest.approx(8 + 10)  # [0, 8) and [10, 20)


def test_intersect_keeps_intervals_a_few_ulps_long():
    """An interval narrower than float resolution around its midpoint is still good in
    both: the intersection is exact, not decided at midpoints."""
    tiny = GTI([0.0, 5000.0], [1.0, np.nextafter(5000.0, np.inf)])
    assert len(tiny) == 2
    assert tiny.intersect(tiny) == tiny
    assert GTI([0.0], [1e4]).intersect(tiny) == tiny
