"""Bins: fixed width, constant S/N (never across long gaps), Bayesian blocks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.datamodel import GTI
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.lightcurve.binning import block_bins, fixed_bins, good_segments, snr, snr_bins
from mxt_pipeline.lightcurve.rates import count_in_bins


def test_fixed_bins_cover_the_range():
    lo, hi = fixed_bins(3.0, 100.0, 10.0)
    assert lo[0] == 3.0 and hi[-1] == 100.0
    np.testing.assert_array_equal(lo[1:], hi[:-1])
    np.testing.assert_allclose(hi[:-1] - lo[:-1], 10.0)
    lo, hi = fixed_bins(3.0, 100.0, 10.0, t0=0.0)  # edges on multiples of 10 from t0
    assert lo[0] == 3.0 and hi[0] == 10.0 and hi[-1] == 100.0
    np.testing.assert_allclose(lo[1:] % 10.0, 0.0)
    with pytest.raises(MXTInputError):
        fixed_bins(0.0, 10.0, 0.0)
    with pytest.raises(MXTInputError):
        fixed_bins(10.0, 10.0, 1.0)


gti_strategy = st.lists(st.floats(0.0, 5000.0), min_size=2, max_size=16, unique=True).map(
    lambda b: GTI(np.sort(b)[0::2][: len(b) // 2], np.sort(b)[1::2][: len(b) // 2])
).filter(lambda g: len(g) > 0 and g.exposure > 1.0)


@given(gti=gti_strategy, max_gap=st.floats(0.0, 2000.0))
def test_good_segments_split_only_at_long_gaps(gti, max_gap):
    lo, hi = good_segments(gti, max_gap)
    assert np.all(lo[1:] - hi[:-1] > max_gap)
    for a, b in zip(gti.start, gti.stop):
        k = np.searchsorted(lo, a, side="right") - 1
        assert lo[k] <= a and b <= hi[k]
    inside = GTI(lo, hi).subtract(gti)  # bridged gaps
    assert np.all(inside.stop - inside.start <= max_gap + 1e-9)


@given(
    gti=gti_strategy,
    seed=st.integers(0, 2**32 - 1),
    rate=st.floats(0.01, 2.0),
    target=st.floats(1.0, 6.0),
    min_counts=st.integers(1, 30),
    max_gap=st.floats(0.0, 1500.0),
)
def test_snr_bins_invariants(gti, seed, rate, target, min_counts, max_gap):
    rng = np.random.default_rng(seed)
    t = np.sort(np.concatenate([rng.uniform(a, b, rng.poisson(rate * (b - a))) for a, b in zip(gti.start, gti.stop)]))
    t = t[gti.contains(np.floor(t / 0.1) * 0.1)]
    t = np.floor(t / 0.1) * 0.1  # frame times: ties
    lo, hi = snr_bins(t, gti, target_snr=target, min_counts=min_counts, max_gap=max_gap)
    assert np.all(hi > lo) and np.all(lo[1:] >= hi[:-1])
    # Every good second in exactly one bin, and no bin spans a gap longer than max_gap.
    assert GTI(lo, hi).intersect(gti) == gti
    seg_lo, seg_hi = good_segments(gti, max_gap)
    k = np.searchsorted(seg_lo, lo, side="right") - 1
    assert np.all(hi <= seg_hi[k])
    # Each bin meets the criteria, except a segment's only bin when it cannot.
    n = count_in_bins(t, lo, hi)
    met = (n >= min_counts) & (np.sqrt(n) >= target - 1e-12)
    alone = np.bincount(k, minlength=seg_lo.size)[k] == 1
    assert np.all(met | alone)
    # The criteria are met as soon as possible: without the bin's last frame they fail,
    # or the bin would be shorter than a frame (except for the merged remainder at the
    # end of a segment).
    last_of_segment = np.r_[k[1:] != k[:-1], True]
    for b in np.flatnonzero(~last_of_segment & met):
        inside = t[(t >= lo[b]) & (t < hi[b])]
        earlier = inside[inside < inside[-1]]
        assert (
            earlier.size < min_counts
            or np.sqrt(earlier.size) < target
            or earlier[-1] < lo[b] + 0.1 * (1.0 - 1e-6)
        )


def test_snr_bins_with_background_reach_the_target():
    rng = np.random.default_rng(5)
    gti = GTI([0.0, 3000.0], [2000.0, 6000.0])
    src = np.sort(np.r_[rng.uniform(0, 2000, 800), rng.uniform(3000, 6000, 1200)])
    bkg = np.sort(np.r_[rng.uniform(0, 2000, 4000), rng.uniform(3000, 6000, 6000)])
    lo, hi = snr_bins(src, gti, target_snr=5.0, min_counts=10, max_gap=500.0, bkg_times=bkg, area_ratio=0.1)
    ratio = snr(count_in_bins(src, lo, hi), count_in_bins(bkg, lo, hi), 0.1)
    # The S/N is judged with the background up to the bin's real edge (halfway to the
    # next event): every bin but a segment's merged remainder reaches the target.
    last_of_segment = np.r_[lo[1:] != hi[:-1], True]
    assert np.all(ratio[~last_of_segment] >= 5.0 - 1e-12)
    assert not np.any((lo < 3000.0) & (hi > 2000.0))  # the 1000 s gap is not spanned
    with pytest.raises(MXTInputError):
        snr_bins(src, gti, min_counts=0)


@given(
    seed=st.integers(0, 2**32 - 1),
    rate=st.floats(0.02, 1.0),
    bkg_rate=st.floats(0.05, 5.0),
    area=st.floats(0.01, 0.5),
    target=st.floats(1.0, 5.0),
    min_counts=st.integers(1, 20),
)
def test_snr_bins_with_background_meet_the_target_over_their_own_edges(seed, rate, bkg_rate, area, target, min_counts):
    """Counted over [lo, hi), as the light curve counts them, every closed bin reaches the target."""
    rng = np.random.default_rng(seed)
    gti = GTI([0.0], [2000.0])
    src = np.sort(rng.uniform(0.0, 2000.0, rng.poisson(rate * 2000.0)))
    bkg = np.sort(rng.uniform(0.0, 2000.0, rng.poisson(bkg_rate * 2000.0)))
    lo, hi = snr_bins(src, gti, target_snr=target, min_counts=min_counts, bkg_times=bkg, area_ratio=area)
    n = count_in_bins(src, lo, hi)
    ratio = snr(n, count_in_bins(bkg, lo, hi), area)
    closed = slice(0, max(lo.size - 1, 0))  # the last bin holds the remainder of the segment
    assert np.all(n[closed] >= min_counts)
    assert np.all(ratio[closed] >= target - 1e-9)


def test_snr_bins_respect_the_frame_time():
    t = np.repeat(np.arange(0.0, 10.0, 0.1), 20)  # 20 events per 0.1 s frame
    lo, hi = snr_bins(t, GTI([0.0], [10.0]), target_snr=1.0, min_counts=1)
    assert np.all(hi - lo >= 0.1 - 1e-12)


def test_block_bins_are_contiguous_over_the_good_time():
    rng = np.random.default_rng(2)
    gti = GTI([0.0, 500.0], [400.0, 1000.0])
    t = np.sort(np.r_[rng.uniform(0, 400, 400), rng.uniform(500, 1000, 500), rng.uniform(600, 650, 300)])
    lo, hi = block_bins(t, gti)
    assert lo[0] == 0.0 and hi[-1] == 1000.0
    np.testing.assert_array_equal(lo[1:], hi[:-1])
    assert lo.size >= 3  # the flare
    lo, hi = block_bins(np.empty(0), gti)
    assert (lo[0], hi[-1]) == (0.0, 1000.0)
