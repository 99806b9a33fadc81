"""Exposure per bin from GTIs and dead time, net rates, errors; gaps are never zeros."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.stats import poisson_conf_interval
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.datamodel import GTI
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.lightcurve.binning import fixed_bins
from mxt_pipeline.lightcurve.poisson_errors import (
    frequentist_interval,
    gehrels_errors,
    kraft_burrows_nousek,
)
from mxt_pipeline.lightcurve.rates import bin_exposure, count_in_bins, light_curve


def test_exposure_of_bins_across_a_gap():
    gti = GTI([0.0, 150.0], [100.0, 300.0])
    lo = np.array([0.0, 50.0, 100.0, 120.0])
    hi = np.array([50.0, 200.0, 150.0, 300.0])
    np.testing.assert_allclose(bin_exposure(lo, hi, gti), [50.0, 100.0, 0.0, 150.0])
    np.testing.assert_allclose(bin_exposure(lo, hi, gti, dead_time_fraction=0.1), [45.0, 90.0, 0.0, 135.0])


@given(
    bounds=st.lists(st.floats(0.0, 1e4), min_size=2, max_size=20, unique=True),
    width=st.floats(1.0, 3000.0),
    dead=st.floats(0.0, 0.5),
)
def test_exposure_sums_to_the_live_good_time(bounds, width, dead):
    b = np.sort(np.asarray(bounds))
    gti = GTI(b[0::2][: b.size // 2], b[1::2][: b.size // 2])
    if len(gti) == 0 or gti.tstop - gti.tstart < 1.0:
        return  # good time comes in whole 0.1 s frames
    lo, hi = fixed_bins(gti.tstart, gti.tstop, width)
    exp = bin_exposure(lo, hi, gti, dead_time_fraction=dead)
    assert np.all(exp >= 0) and np.all(exp <= (hi - lo) * (1 - dead) + 1e-9)
    assert exp.sum() == pytest.approx(gti.exposure * (1 - dead), rel=1e-9, abs=1e-6)


def test_exposure_input_errors():
    gti = GTI([0.0], [10.0])
    with pytest.raises(MXTInputError):
        bin_exposure([1.0], [1.0], gti)
    with pytest.raises(MXTInputError):
        bin_exposure([0.0], [1.0], gti, dead_time_fraction=1.0)
    with pytest.raises(MXTInputError):
        bin_exposure([0.0], [0.01], gti)  # narrower than half a 0.1 s frame


def test_count_in_bins_matches_histogram():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 100, 1000))
    edges = np.linspace(0, 100, 11)
    np.testing.assert_array_equal(count_in_bins(t, edges[:-1], edges[1:]), np.histogram(t, edges)[0])


def test_bins_in_gaps_are_dropped_not_zero():
    gti = GTI([0.0, 500.0], [200.0, 1000.0])
    rng = np.random.default_rng(1)
    t = np.sort(np.r_[rng.uniform(0, 200, 200), rng.uniform(500, 1000, 500)])
    lo, hi = fixed_bins(0.0, 1000.0, 100.0)
    lc = light_curve(t, lo, hi, gti)
    assert len(lc) == 7  # [200, 500) holds three bins of pure gap
    assert not np.any((lc.lo >= 200.0) & (lc.hi <= 500.0))
    assert np.all(np.isfinite(lc.rate)) and np.all(lc.fracexp > 0)
    # A bin half in the gap: its rate uses its good time only.
    gti2 = GTI([0.0, 150.0], [50.0, 1000.0])
    lc2 = light_curve(np.array([10.0, 20.0, 160.0, 170.0]), np.array([0.0]), np.array([200.0]), gti2)
    assert lc2.fracexp[0] == pytest.approx(0.5)
    assert lc2.rate[0] == pytest.approx(4.0 / 100.0)


def test_net_rate_background_psf_and_dead_time():
    gti = GTI([0.0], [100.0])
    src = np.linspace(0.5, 99.5, 30)  # 30 counts in one 100 s bin
    bkg = np.linspace(0.1, 99.9, 50)  # 50 counts in an area ten times larger
    lc = light_curve(src, np.array([0.0]), np.array([100.0]), gti, bkg_times=bkg, area_ratio=0.1,
                     psf_fraction=0.5, dead_time_fraction=0.2)  # fmt: skip
    live = 100.0 * 0.8
    assert lc.rate[0] == pytest.approx((30 - 5.0) / (live * 0.5))
    assert lc.bkg_rate[0] == pytest.approx(5.0 / live)
    n_lo, n_hi = frequentist_interval(30)
    b_lo, b_hi = frequentist_interval(50)
    assert lc.err_hi[0] == pytest.approx(np.hypot(n_hi - 30, 0.1 * (50 - b_lo)) / (live * 0.5))
    assert lc.err_lo[0] == pytest.approx(np.hypot(30 - n_lo, 0.1 * (b_hi - 50)) / (live * 0.5))
    assert lc.error[0] == pytest.approx(0.5 * (lc.err_lo[0] + lc.err_hi[0]))
    assert lc.bkg_error[0] == pytest.approx(0.1 * 0.5 * ((50 - b_lo) + (b_hi - 50)) / live)


def test_error_methods():
    gti = GTI([0.0], [10.0])
    t = np.array([1.0, 2.0, 3.0])
    lo, hi = np.array([0.0]), np.array([10.0])
    g = light_curve(t, lo, hi, gti, error_method="gehrels")
    e_lo, e_hi = gehrels_errors(3)
    assert (g.err_lo[0], g.err_hi[0]) == pytest.approx((e_lo / 10.0, e_hi / 10.0))
    # KBN: non-negative net counts, the interval around the posterior mode.
    bkg = np.linspace(0.5, 9.5, 40)
    k = light_curve(t, lo, hi, gti, bkg_times=bkg, area_ratio=0.1, error_method="kbn")
    s_lo, s_hi = kraft_burrows_nousek(3, 4.0)
    assert k.rate[0] == 0.0
    assert k.err_hi[0] == pytest.approx(s_hi / 10.0) and k.err_lo[0] == pytest.approx(0.0)
    # An empty bin: rate 0 with a positive upper error, never NaN.
    e = light_curve(np.array([15.0]), lo, hi, GTI([0.0], [20.0]))
    assert e.rate[0] == 0.0 and e.err_lo[0] == 0.0 and e.err_hi[0] > 0.0
    with pytest.raises(MXTInputError):
        light_curve(t, lo, hi, gti, error_method="sqrt")
    with pytest.raises(MXTInputError):
        light_curve(t, lo, hi, gti, psf_fraction=0.0)
    with pytest.raises(MXTInputError):
        light_curve(t, np.array([0.0, 5.0]), np.array([6.0, 10.0]), gti)  # overlapping bins


def test_min_fracexp_drops_barely_exposed_bins():
    gti = GTI([0.0, 95.0], [90.0, 200.0])
    lo, hi = fixed_bins(0.0, 200.0, 10.0)
    lc = light_curve(np.array([50.0, 150.0]), lo, hi, gti, min_fracexp=0.6)
    assert np.all(lc.fracexp > 0.6)
    assert len(lc) == 19  # [90, 100) has FRACEXP 0.5


# ---- physical invariants (issue #22, item 3) ------------------------------------------------
_edge = st.integers(0, 400).map(lambda k: 0.25 * k)


@given(
    raw=st.lists(st.tuples(_edge, st.integers(0, 120).map(lambda k: 0.25 * k)), min_size=1, max_size=8),
    cuts=st.lists(st.integers(1, 519), min_size=0, max_size=15, unique=True),
    dead=st.sampled_from([0.0, 0.04, 0.25, 0.5]),
)
def test_exposure_is_the_good_time_minus_dead_time(raw, cuts, dead):
    """Overlapping and abutting GTIs (SAA, Earth, telemetry at once), any partition of the
    time axis into bins: each bin's exposure is its good time (brute force on the raw
    intervals) times the live fraction, and the bins add up to the GTI sum minus the
    dead time."""
    gti = GTI([a for a, _ in raw], [a + w for a, w in raw])
    edges = np.r_[-5.0, 0.25 * np.sort(np.asarray(cuts, dtype=float)), 135.0]
    lo, hi = edges[:-1], edges[1:]
    exp = bin_exposure(lo, hi, gti, dead_time_fraction=dead)
    # The union of the raw intervals on the 0.25 s lattice they live on.
    ticks = np.arange(-5.0, 135.0, 0.25) + 0.125
    good = np.zeros(ticks.shape, bool)
    for a, w in raw:
        good |= (ticks >= a) & (ticks < a + w)
    assert gti.exposure == pytest.approx(0.25 * good.sum(), abs=1e-9)
    want = np.array([0.25 * good[(ticks >= lw) & (ticks < h)].sum() for lw, h in zip(lo, hi)]) * (1.0 - dead)
    np.testing.assert_allclose(exp, want, atol=1e-9)
    assert exp.sum() == pytest.approx(gti.exposure * (1.0 - dead), abs=1e-9)
    # Through light_curve: the kept bins hold every live second.
    lc = light_curve(np.array([]), lo, hi, gti, dead_time_fraction=dead)
    assert lc.exposure.sum() == pytest.approx(gti.exposure * (1.0 - dead), abs=1e-9)
    assert np.all(lc.exposure > 0) and np.all(lc.fracexp <= 1.0 - dead + 1e-12)


@given(
    counts=st.lists(st.integers(0, 60), min_size=1, max_size=6),
    bkg=st.lists(st.integers(0, 80), min_size=6, max_size=6),
    area_ratio=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
    psf=st.floats(0.2, 1.0),
    dead=st.floats(0.0, 0.5),
    method=st.sampled_from(["frequentist", "gehrels", "kbn"]),
)
def test_upper_limit_rate_lower_limit_ordered(counts, bkg, area_ratio, psf, dead, method):
    """lower <= rate <= upper for any counts, background and exposure, with every error
    method; without background the limits are astropy's Poisson limits over the live
    exposure."""
    n = len(counts)
    lo, hi = 10.0 * np.arange(n), 10.0 * np.arange(n) + 10.0
    src = np.concatenate([np.linspace(lo[i] + 0.01, hi[i] - 0.01, c) for i, c in enumerate(counts)])
    bt = np.concatenate([np.linspace(lo[i] + 0.02, hi[i] - 0.02, bkg[i]) for i in range(n)])
    gti = GTI([0.0], [10.0 * n])
    lc = light_curve(src, lo, hi, gti, bkg_times=bt, area_ratio=area_ratio, psf_fraction=psf,
                     dead_time_fraction=dead, error_method=method)  # fmt: skip
    assert len(lc) == n
    np.testing.assert_array_equal(lc.counts, counts)
    assert np.all(np.isfinite(lc.rate)) and np.all(lc.err_lo >= 0) and np.all(lc.err_hi >= 0)
    lower, upper = lc.rate - lc.err_lo, lc.rate + lc.err_hi
    assert np.all(lower <= lc.rate) and np.all(lc.rate <= upper)
    scale = 10.0 * (1.0 - dead) * psf
    if area_ratio == 0.0 or method == "kbn":
        assert np.all(upper > 0)  # an upper limit even for an empty bin
    if area_ratio == 0.0:
        interval = {"frequentist": "frequentist-confidence", "gehrels": "sherpagehrels"}.get(method)
        if interval is not None:
            ref_lo, ref_hi = poisson_conf_interval(np.asarray(counts), interval=interval)
            np.testing.assert_allclose(upper * scale, ref_hi, rtol=1e-9)
            if method == "frequentist":
                np.testing.assert_allclose(lower * scale, ref_lo, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(lc.rate * scale, counts, rtol=1e-12)
    if method == "kbn":
        assert np.all(lower >= -1e-12)  # KBN limits a non-negative source rate
