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
    # Any one of the three columns of another length.
    for start, stop, origin in (([0.0, 1.0], [2.0], ["SAA"]), ([0.0], [1.0, 2.0], ["SAA"]),
                                ([0.0], [1.0], ["SAA", "EARTH"])):  # fmt: skip
        with pytest.raises(MXTInputError, match="equal lengths"):
            GapList(start, stop, origin)


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


# ---- algebra against an exact boundary sweep (issue #22, item 3) ---------------------------
# Endpoints drawn from a coarse lattice make overlapping, nested, abutting and identical
# intervals common; arbitrary floats keep the general case.  Raw input intervals may be
# empty (stop <= start) or in any order: GTI() normalises them.
endpoint = st.one_of(st.integers(0, 24).map(lambda k: 0.5 * k), st.floats(0.0, 12.0, allow_nan=False))
raw_intervals = st.lists(st.tuples(endpoint, endpoint), min_size=0, max_size=7)


def _brute(pairs):
    """Membership function of a raw list of half-open intervals (the reference)."""

    def member(t):
        return np.array([any(a <= x < b for a, b in pairs) for x in np.atleast_1d(t)], dtype=bool)

    return member


def _sweep(*points):
    """Every breakpoint, the midpoints between consecutive ones and a point outside on
    either side: a half-open interval set is constant between breakpoints, so its values
    there decide it exactly, boundaries included."""
    b = np.unique(np.concatenate([np.asarray(p, dtype=float).ravel() for p in points] + [np.array([0.0])]))
    mids = 0.5 * (b[1:] + b[:-1])
    return np.r_[b[0] - 1.0, b, mids, b[-1] + 1.0], b


def _measure(member, breakpoints):
    """Lebesgue measure of a set constant between ``breakpoints`` (exact up to rounding)."""
    if breakpoints.size < 2:
        return 0.0
    mids = 0.5 * (breakpoints[1:] + breakpoints[:-1])
    return float(np.sum(np.diff(breakpoints)[member(mids)]))


def _canonical(g: GTI) -> None:
    assert np.all(g.stop > g.start)
    assert np.all(g.start[1:] > g.stop[:-1])  # disjoint and not even touching: merged


def _pairs_of(g: GTI):
    return list(zip(g.start.tolist(), g.stop.tolist()))


@given(raw_intervals, raw_intervals, endpoint, endpoint)
def test_operations_match_the_exact_boundary_sweep(p1, p2, c1, c2):
    """Union, intersection, subtraction, complement: membership at every boundary and
    between boundaries equals the brute-force set, the result is canonical, and the
    exposure is the measure of the set."""
    tmin, tmax = min(c1, c2), max(c1, c2) + 0.5
    a, b = GTI([s for s, _ in p1], [e for _, e in p1]), GTI([s for s, _ in p2], [e for _, e in p2])
    ma, mb = _brute(p1), _brute(p2)
    grid, bp = _sweep([x for p in p1 + p2 for x in p], [tmin, tmax])
    def win(t):
        return (t >= tmin) & (t < tmax)

    expected = {
        "normalised a": (a, ma),
        "union": (a.union(b), lambda t: ma(t) | mb(t)),
        "intersect": (a.intersect(b), lambda t: ma(t) & mb(t)),
        "subtract": (a.subtract(b), lambda t: ma(t) & ~mb(t)),
        "complement": (a.complement(tmin, tmax), lambda t: win(t) & ~ma(t)),
    }
    for name, (got, want) in expected.items():
        _canonical(got)
        assert np.array_equal(got.contains(grid), want(grid)), name
        assert got.exposure == pytest.approx(_measure(want, bp), abs=1e-9), name


@given(raw_intervals, raw_intervals, raw_intervals)
def test_union_and_intersection_laws(p1, p2, p3):
    """Commutative, associative, idempotent, absorbing, distributive (exact: no operation
    creates a new boundary value, so the canonical forms are equal bit for bit)."""
    a, b, c = (GTI([s for s, _ in p], [e for _, e in p]) for p in (p1, p2, p3))
    assert a.union(b) == b.union(a)
    assert a.intersect(b) == b.intersect(a)
    assert a.union(b).union(c) == a.union(b.union(c))
    assert a.intersect(b).intersect(c) == a.intersect(b.intersect(c))
    assert a.union(a) == a and a.intersect(a) == a
    assert a.union(a.intersect(b)) == a
    assert a.intersect(a.union(b)) == a
    assert a.intersect(b.union(c)) == a.intersect(b).union(a.intersect(c))
    assert a.union(b.intersect(c)) == a.union(b).intersect(a.union(c))
    assert len(a.subtract(a)) == 0
    assert a.subtract(b).union(a.intersect(b)) == a
    # Inclusion-exclusion of the exposures.
    assert a.union(b).exposure + a.intersect(b).exposure == pytest.approx(a.exposure + b.exposure, abs=1e-9)


@given(raw_intervals, raw_intervals, endpoint, endpoint)
def test_complement_laws(p1, p2, c1, c2):
    """De Morgan inside a window, double complement, subtraction as intersection with the
    complement, and the complement's exposure."""
    tmin, tmax = min(c1, c2), max(c1, c2) + 0.5
    a, b = GTI([s for s, _ in p1], [e for _, e in p1]), GTI([s for s, _ in p2], [e for _, e in p2])
    window = GTI([tmin], [tmax])
    ca, cb = a.complement(tmin, tmax), b.complement(tmin, tmax)
    assert a.union(b).complement(tmin, tmax) == ca.intersect(cb)
    assert a.intersect(b).complement(tmin, tmax) == ca.union(cb)
    assert ca.complement(tmin, tmax) == a.intersect(window)
    assert len(ca.intersect(a)) == 0
    assert ca.union(a.intersect(window)) == window
    assert a.intersect(window).subtract(b) == a.intersect(window).intersect(cb)
    assert ca.exposure == pytest.approx((tmax - tmin) - a.intersect(window).exposure, abs=1e-9)


def test_abutting_and_overlapping_gaps_of_several_origins():
    """SAA, Earth and telemetry gaps that overlap and abut: the bad time is their union,
    each origin keeps its own intervals, the good time is the complement."""
    gaps = GapList([10.0, 15.0, 20.0, 40.0, 42.0], [20.0, 18.0, 30.0, 42.0, 45.0],
                   ["SAA", "TELEMETRY", "EARTH", "EARTH", "SAA"])  # fmt: skip
    bad = gaps.as_bad_time()
    assert _pairs_of(bad) == [(10.0, 30.0), (40.0, 45.0)]  # [10,20)+[20,30) abut: merged
    assert _pairs_of(gaps.of_origin("EARTH")) == [(20.0, 30.0), (40.0, 42.0)]
    assert _pairs_of(gaps.of_origin("SAA")) == [(10.0, 20.0), (42.0, 45.0)]
    good = GTI([0.0], [50.0]).subtract(bad)
    assert _pairs_of(good) == [(0.0, 10.0), (30.0, 40.0), (45.0, 50.0)]
    assert good.exposure == 50.0 - 25.0
    assert list(good.contains([9.999, 10.0, 29.999, 30.0, 40.0, 45.0])) == [True, False, False, True, False, True]


@given(raw_intervals, st.lists(st.tuples(endpoint, endpoint), min_size=1, max_size=6))
def test_overlap_of_any_window_is_its_good_time(pairs, windows):
    """Good time in windows [lo, hi), exact boundaries included; an inverted or empty
    window (hi <= lo) holds none (never a negative time)."""
    g = GTI([s for s, _ in pairs], [e for _, e in pairs])
    lo = np.array([w[0] for w in windows])
    hi = np.array([w[1] for w in windows])
    got = g.overlap(lo, hi)
    want = [sum(max(0.0, min(b, h) - max(a, lw)) for a, b in zip(g.start, g.stop)) for lw, h in zip(lo, hi)]
    np.testing.assert_allclose(got, want, atol=1e-9)
    assert np.all(got >= 0.0) and np.all(got[hi <= lo] == 0.0)
