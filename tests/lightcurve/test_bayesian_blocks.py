"""Bayesian blocks: identical edges to astropy on gap-free data, gap awareness with GTIs.

The reference is ``astropy.stats.bayesian_blocks`` (the quadratic programme of Scargle
et al. 2013).  Equality is exact (``np.array_equal``): same edges to the last bit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.stats import bayesian_blocks as astropy_blocks
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.datamodel import GTI
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.lightcurve import bayesian_blocks, ncp_prior_from_p0
from mxt_pipeline.lightcurve.bayesian_blocks import good_time_coordinate, real_time_from_good


def reference(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy warns on 1/0 for a single event
        return astropy_blocks(*args, **kwargs)


# ---- strategies --------------------------------------------------------------------------

#: Times on a small integer grid: many ties, regular spacings (exact structural ties).
tied_times = st.integers(1, 40).flatmap(
    lambda k: st.lists(st.integers(0, k), min_size=1, max_size=300).map(lambda v: np.asarray(v, float))
)
#: Times rounded to 0.1 s frames over a random span: ties plus irregular spacing.
framed_times = st.lists(st.floats(0, 500, allow_nan=False), min_size=1, max_size=300).map(
    lambda v: np.round(np.asarray(v) * 10.0) / 10.0
)
#: Two rates: a burst inside a steady level (real change points).
burst_times = st.tuples(st.integers(1, 150), st.integers(0, 150), st.integers(0, 2**32 - 1)).map(
    lambda a: np.r_[
        np.random.default_rng(a[2]).uniform(0, 100, a[0]),
        np.random.default_rng(a[2] + 1).uniform(40, 45, a[1]),
    ]
)
any_times = st.one_of(tied_times, framed_times, burst_times)
priors = st.one_of(
    st.sampled_from([0.05, 0.01, 0.3, 0.9]).map(lambda p: {"p0": p}),
    st.floats(-3.0, 15.0).map(lambda c: {"ncp_prior": c}),
    st.floats(1e-4, 0.99).map(lambda g: {"gamma": g}),
)


@given(t=any_times, prior=priors)
def test_events_identical_to_astropy(t, prior):
    ours = bayesian_blocks(t, fitness="events", **prior)
    assert np.array_equal(ours, reference(t, fitness="events", **prior))


@given(t=any_times, prior=priors)
def test_pruned_equals_dense(t, prior):
    """The pruned programme and the quadratic one of this module agree exactly."""
    assert np.array_equal(
        bayesian_blocks(t, **prior, method="pruned"), bayesian_blocks(t, **prior, method="dense")
    )


@given(
    data=st.integers(1, 200).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 6), min_size=n, max_size=n),
            st.sampled_from([1.0, 0.1, 0.37]),
        )
    ),
    prior=priors,
)
def test_binned_events_with_empty_bins(data, prior):
    """Counts per bin (zeros included: blocks of no count) match astropy."""
    counts, dt = data
    t = np.arange(len(counts)) * dt
    x = np.asarray(counts, float)
    assert np.array_equal(bayesian_blocks(t, x, **prior), reference(t, x, fitness="events", **prior))


@given(
    n=st.integers(1, 120),
    seed=st.integers(0, 2**32 - 1),
    sigma=st.one_of(st.just(None), st.floats(0.05, 3.0)),
    p0=st.sampled_from([0.05, 0.2]),
)
def test_measures_identical_to_astropy(n, seed, sigma, p0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 100, n))
    x = np.where(t > 50, 1.0, 0.0) + rng.normal(0, 0.2, n)
    ours = bayesian_blocks(t, x, sigma, fitness="measures", p0=p0)
    assert np.array_equal(ours, reference(t, x, sigma, fitness="measures", p0=p0))


@given(n=st.integers(2, 150), seed=st.integers(0, 2**32 - 1))
def test_regular_events_identical_to_astropy(n, seed):
    rng = np.random.default_rng(seed)
    dt = 0.05
    t = dt * np.arange(n)
    x = (rng.uniform(size=n) < np.where(np.arange(n) > n // 2, 0.6, 0.1)).astype(float)
    with warnings.catch_warnings():
        # Both warn when a half-width end cell holds an event (N/M > 1), as astropy does.
        warnings.simplefilter("ignore", UserWarning)
        ours = bayesian_blocks(t, x, fitness="regular_events", dt=dt)
    assert np.array_equal(ours, reference(t, x, fitness="regular_events", dt=dt))


def test_many_seeded_inputs_identical():
    """150 seeded inputs of every kind (complements the hypothesis search)."""
    rng = np.random.default_rng(2026)
    for trial in range(150):
        n = int(rng.integers(1, 300))
        kind = trial % 4
        if kind == 0:
            t = rng.integers(0, rng.integers(1, 50), n).astype(float)
        elif kind == 1:
            t = rng.uniform(0, 100, n)
        elif kind == 2:
            t = np.r_[rng.uniform(0, 100, n), rng.uniform(40, 45, n)]
        else:
            t = np.round(rng.exponential(10, n), 1)
        p0 = float(rng.choice([0.05, 0.01, 0.5]))
        assert np.array_equal(bayesian_blocks(t, p0=p0), reference(t, p0=p0)), (trial, n)


@pytest.mark.parametrize("seed", [0, 1])
def test_larger_inputs_identical(seed):
    """A few thousand events: a decaying GRB on 0.1 s frames, and many change points."""
    rng = np.random.default_rng(seed)
    grb = np.round(np.sort(100.0 * (rng.pareto(1.0, 3000) + 1.0)) / 0.1) * 0.1
    assert np.array_equal(bayesian_blocks(grb), reference(grb))
    rates = rng.uniform(0.5, 20.0, 40)
    steps = np.cumsum(rng.exponential(1.0 / np.repeat(rates, 100)))
    edges = bayesian_blocks(steps, p0=0.01)
    assert np.array_equal(edges, reference(steps, p0=0.01))
    assert edges.size > 10  # the test data do hold many change points


def test_tiny_inputs_and_astropy_conventions():
    # One distinct time: one edge (astropy's convention), whatever the ties.
    assert np.array_equal(bayesian_blocks([3.0]), [3.0])
    assert np.array_equal(bayesian_blocks([5.0, 5.0, 5.0]), [5.0])
    # Two events: one block over both.
    assert np.array_equal(bayesian_blocks([0.0, 1.0]), [0.0, 1.0])
    # Every cell its own block: astropy drops the first interior edge; so do we.
    t, x = np.array([0.0, 1.0, 2.0]), np.array([0.0, 40.0, 0.0])
    assert np.array_equal(bayesian_blocks(t, x, ncp_prior=-5.0), reference(t, x, ncp_prior=-5.0))
    # Unsorted input with ties is sorted and merged.
    t = np.array([3.0, 1.0, 2.0, 1.0, 3.0, 3.0, 10.0])
    assert np.array_equal(bayesian_blocks(t), reference(t))


def test_prior_formula_matches_astropy():
    from astropy.stats.bayesian_blocks import Events

    for n in (1, 10, 1000, 123457):
        for p0 in (0.05, 0.003):
            assert ncp_prior_from_p0(p0, n) == Events(p0=p0).compute_ncp_prior(n)
    # Precedence: ncp_prior over gamma over p0.
    t = np.r_[np.linspace(0, 10, 50), np.linspace(4, 5, 50)]
    assert np.array_equal(bayesian_blocks(t, p0=0.9, gamma=0.5, ncp_prior=30.0), bayesian_blocks(t, ncp_prior=30.0))
    assert np.array_equal(bayesian_blocks(t, p0=0.9, gamma=0.5), bayesian_blocks(t, ncp_prior=-np.log(0.5)))


def test_input_errors():
    with pytest.raises(MXTInputError, match="empty"):
        bayesian_blocks([])
    with pytest.raises(MXTInputError, match="NaN"):
        bayesian_blocks([1.0, np.nan])
    with pytest.raises(MXTInputError, match="one-dimensional"):
        bayesian_blocks(np.zeros((2, 2)))
    with pytest.raises(MXTInputError, match="integer"):
        bayesian_blocks([1.0, 2.0], [0.5, 1.0])
    with pytest.raises(MXTInputError, match="repeated"):
        bayesian_blocks([1.0, 1.0], [1.0, 2.0])
    with pytest.raises(MXTInputError, match="sigma"):
        bayesian_blocks([1.0, 2.0], sigma=1.0)
    with pytest.raises(MXTInputError, match="dt"):
        bayesian_blocks([1.0, 2.0], [0, 1], fitness="regular_events")
    with pytest.raises(MXTInputError, match="fitness"):
        bayesian_blocks([1.0, 2.0], fitness="nonsense")
    with pytest.raises(MXTInputError, match="prior"):
        bayesian_blocks([1.0, 2.0], p0=None)
    with pytest.raises(MXTInputError, match="outside the GTIs"):
        bayesian_blocks([1.0, 5.0], gti=[[0.0, 2.0]])


# ---- gaps ----------------------------------------------------------------------------------


@given(
    u=st.lists(st.floats(0.0, 0.999999), min_size=1, max_size=50),
    bounds=st.lists(st.floats(0.0, 1000.0), min_size=2, max_size=12, unique=True),
)
def test_good_time_coordinate_round_trip(u, bounds):
    b = np.sort(np.asarray(bounds))
    start, stop = b[0::2][: b.size // 2], b[1::2][: b.size // 2]
    gti = GTI(start, stop)
    total = gti.exposure
    uu = np.asarray(u) * total
    t = real_time_from_good(uu, gti.start, gti.stop)
    assert np.all(gti.contains(t) | np.isclose(uu, total))
    np.testing.assert_allclose(good_time_coordinate(t, gti.start, gti.stop), uu, atol=1e-9 * max(1.0, b[-1]))


def _constant_source_with_gaps(seed: int, rate: float = 2.0):
    rng = np.random.default_rng(seed)
    starts = np.array([0.0, 1500.0, 2300.0, 4000.0])
    stops = np.array([1000.0, 2000.0, 3500.0, 5000.0])
    times = np.concatenate([np.sort(rng.uniform(a, b, rng.poisson(rate * (b - a)))) for a, b in zip(starts, stops)])
    return times, GTI(starts, stops)


@pytest.mark.parametrize("seed", range(5))
def test_constant_source_through_gaps_gives_one_block(seed):
    """With the GTIs, a constant source is one block spanning the good time."""
    times, gti = _constant_source_with_gaps(seed)
    edges = bayesian_blocks(times, gti=gti)
    assert np.array_equal(edges, [gti.tstart, gti.tstop])


def test_without_gtis_the_gaps_look_like_rate_changes():
    """The contrast that motivates the GTI argument: ignoring gaps invents change points."""
    found = 0
    for seed in range(5):
        times, gti = _constant_source_with_gaps(seed)
        edges = bayesian_blocks(times)
        found += edges.size > 2
    assert found == 5


def test_gti_blocks_find_a_real_change_and_equal_gap_free_result():
    """A step in rate is found across gaps; on a single GTI, GTI mode is the plain result
    in good-time coordinates."""
    rng = np.random.default_rng(11)
    times, gti = _constant_source_with_gaps(4, rate=1.0)
    flare = np.sort(rng.uniform(2400.0, 2600.0, 600))
    edges = bayesian_blocks(np.sort(np.r_[times, flare]), gti=gti)
    assert edges[0] == gti.tstart and edges[-1] == gti.tstop
    assert np.any(np.abs(edges - 2400.0) < 5.0) and np.any(np.abs(edges - 2600.0) < 5.0)
    # One GTI starting at the first event and ending at the last: same edges as astropy.
    t = np.sort(rng.uniform(0, 100, 200))
    t = np.r_[t, rng.uniform(30, 35, 100)]
    t.sort()
    single = GTI([t[0]], [np.nextafter(t[-1], np.inf)])
    u_edges = bayesian_blocks(t, gti=single)
    plain = reference(t)
    np.testing.assert_allclose(u_edges[1:-1], plain[1:-1], rtol=0, atol=1e-9)


# ---- invariances (issue #22, item 3) -------------------------------------------------------
#: Times on a dyadic grid (k/8 s), so that a shift by a whole number of seconds and the
#: midpoints between events are exact in floating point.
dyadic_times = st.one_of(
    st.lists(st.integers(0, 4000), min_size=1, max_size=250).map(lambda v: np.asarray(v, float) / 8.0),
    burst_times.map(lambda t: np.round(t * 8.0) / 8.0),
)


@given(t=dyadic_times, prior=priors, seed=st.integers(0, 2**32 - 1),
       method=st.sampled_from(["pruned", "dense"]), with_gti=st.booleans())  # fmt: skip
def test_edges_do_not_depend_on_event_order(t, prior, seed, method, with_gti):
    """Any permutation of the events gives the same edges, with or without GTIs, by the
    pruned and by the quadratic algorithm; the edges equal astropy's on gap-free data."""
    gti = GTI([t.min() - 3.0, t.max() + 7.0], [t.max() + 5.0, t.max() + 9.0]) if with_gti else None
    shuffled = np.random.default_rng(seed).permutation(t)
    edges = bayesian_blocks(np.sort(t), gti=gti, method=method, **prior)
    assert np.array_equal(bayesian_blocks(shuffled, gti=gti, method=method, **prior), edges)
    assert np.array_equal(bayesian_blocks(t[::-1].copy(), gti=gti, method=method, **prior), edges)
    if gti is None:
        assert np.array_equal(edges, reference(shuffled, fitness="events", **prior))


@given(t=dyadic_times, prior=priors, shift=st.integers(-10**6, 10**6), with_gti=st.booleans())
def test_edges_move_with_a_time_shift(t, prior, shift, with_gti):
    """Shifting every time (and the GTIs) by s shifts every edge by s and changes nothing
    else: the number and the placement of the blocks are those of the unshifted data."""
    lo, hi = t.min() - 2.5, t.max() + 4.0
    gti = (lambda d: GTI([lo + d, hi + 1.0 + d], [hi + d, hi + 3.0 + d])) if with_gti else (lambda d: None)
    base = bayesian_blocks(t, gti=gti(0.0), **prior)
    moved = bayesian_blocks(t + shift, gti=gti(float(shift)), **prior)
    assert moved.size == base.size
    np.testing.assert_allclose(moved - shift, base, rtol=0, atol=1e-9)
    if not with_gti:
        np.testing.assert_allclose(reference(t + shift, fitness="events", **prior) - shift, base, rtol=0, atol=1e-9)
