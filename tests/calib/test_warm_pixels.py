"""Per-observation warm and flickering pixel and column search (issue 21, item 2).

Unit tests on Poisson images and event lists built here, property tests of the column
kernel, and the chain on simulated fields: a warm column not in BADPIX is flagged, the
PSF core of a bright source is not, and a clean field loses nothing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxt_pipeline.calib.badpix import find_warm_columns, find_warm_pixels
from mxt_pipeline.io.formats import STATUS_BITS

N = 256


def _flat_events(rng, per_pixel, n_frames=100_000):
    """Events of a flat background: (rawy, rawz, frame), ``per_pixel`` per pixel on average."""
    n = rng.poisson(per_pixel * N * N)
    return rng.integers(0, N, n), rng.integers(0, N, n), rng.integers(0, n_frames, n)


def _with_column(rng, y, z, f, col, per_pixel, frames=None, n_frames=100_000):
    n = rng.poisson(per_pixel * N)
    fr = rng.integers(0, n_frames, n) if frames is None else rng.choice(frames, n)
    return np.r_[y, np.full(n, col)], np.r_[z, rng.integers(0, N, n)], np.r_[f, fr]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 2.0))
def test_no_column_flagged_on_a_flat_field(seed, per_pixel):
    """Flat Poisson fields of any level: no column (alpha 1e-6: a false flag is 1e-6 per
    field, so the property holds for every drawn seed in practice)."""
    rng = np.random.default_rng(seed)
    img = rng.poisson(per_pixel, (N, N))
    assert not find_warm_columns(img, alpha=1e-6).any()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 0.05), st.integers(0, N - 1), st.floats(1.0, 5.0))
def test_a_warm_column_is_always_flagged_alone(seed, background, col, per_pixel):
    """One hit or more per pixel on a background of at most 0.05: the column, only it."""
    rng = np.random.default_rng(seed)
    img = rng.poisson(background, (N, N))
    img[col] += rng.poisson(per_pixel, N)
    flagged = find_warm_columns(img)
    assert flagged[col] and flagged.sum() == 1


def test_known_bad_pixels_are_left_out_of_the_column_counts():
    img = np.zeros((N, N), int)
    img[40] = 5
    bad = np.zeros((N, N), bool)
    bad[40] = True
    assert not find_warm_columns(img, bad).any()


def test_smooth_bright_profile_is_not_a_column():
    """A broad, very bright profile (1e6 events, Gaussian of 15 px sigma, as the MXT
    core) changes by far less than the bound between neighbouring columns."""
    yy, zz = np.mgrid[0:N, 0:N]
    lam = 1e6 * np.exp(-((yy - 128.0) ** 2 + (zz - 128.0) ** 2) / (2 * 15.0**2)) / (2 * np.pi * 15.0**2) + 0.01
    img = np.random.default_rng(3).poisson(lam)
    assert not find_warm_columns(img).any()


def test_flat_field_events_give_no_flag():
    rng = np.random.default_rng(11)
    for per_pixel in (0.005, 0.3):
        res = find_warm_pixels(*_flat_events(rng, per_pixel))
        assert not res.mask.any(), res.to_dict()


def test_warm_and_flickering_columns_are_found():
    rng = np.random.default_rng(5)
    y, z, f = _flat_events(rng, 0.01)
    res = find_warm_pixels(*_with_column(rng, y, z, f, 77, 1.0))
    assert list(res.warm_columns) == [77] and res.mask[77].all() and res.mask.sum() == N
    # A weaker column (0.15 per pixel) whose hits all fall in 5 frames: a flicker.
    y2, z2, f2 = _with_column(rng, y, z, f, 150, 0.15, frames=rng.integers(0, 100_000, 5))
    res = find_warm_pixels(y2, z2, f2)
    assert 150 in set(res.flickering_columns) | set(res.warm_columns)


def test_flickering_pixel_is_found_by_its_time_profile():
    """Six events of one pixel in one frame on a 0.05 background: not a spatial outlier
    at the Bonferroni level only because of the Gehrels bound, found by the time test."""
    rng = np.random.default_rng(8)
    y, z, f = _flat_events(rng, 0.05)
    y, z, f = np.r_[y, np.full(6, 30)], np.r_[z, np.full(6, 200)], np.r_[f, np.full(6, 4242)]
    res = find_warm_pixels(y, z, f)
    assert res.mask[30, 200]
    assert res.mask.sum() == 1


def test_variable_source_is_not_a_flicker():
    """A broad source (15 px) that flares: 80 % of its 40 000 events in 2 % of the time.
    Its pixels vary like their neighbours: nothing is flagged."""
    rng = np.random.default_rng(9)
    y, z, f = _flat_events(rng, 0.02)
    n = 40_000
    sy = np.clip(np.rint(rng.normal(128, 15, n)), 0, N - 1).astype(int)
    sz = np.clip(np.rint(rng.normal(100, 15, n)), 0, N - 1).astype(int)
    flare = rng.random(n) < 0.8
    sf = np.where(flare, rng.integers(50_000, 52_000, n), rng.integers(0, 100_000, n))
    res = find_warm_pixels(np.r_[y, sy], np.r_[z, sz], np.r_[f, sf])
    assert not res.mask.any(), res.to_dict()


def test_known_bad_pixels_are_never_reported():
    rng = np.random.default_rng(12)
    y, z, f = _with_column(rng, *_flat_events(rng, 0.01), 60, 2.0)
    bad = np.zeros((N, N), bool)
    bad[60] = True
    assert not find_warm_pixels(y, z, f, bad).mask.any()


# ---- the chain on simulated fields -----------------------------------------------------------


@pytest.fixture(scope="module")
def simcal():
    from mxt_pipeline.caldb.simulator import load_simulator_calibration

    return load_simulator_calibration(None, met=3.0e8)[0]


def _calibrated(simcal, seed, *, flux=None, warm=None):
    from mxt_pipeline.calib.chain import ChainParams, calibrate
    from mxt_pipeline.simulate.bench import simulate
    from mxt_pipeline.simulate.cases import gp_scenario

    sc = gp_scenario(seed, n_sources=1)
    if flux is not None:
        sc = dataclasses.replace(sc, sources=[dataclasses.replace(sc.sources[0], flux=flux)])
    if warm is not None:
        sc = dataclasses.replace(sc, detector=dataclasses.replace(sc.detector, warm_columns=(warm,)))
    ds = simulate(sc, seed, simcal)
    ev, rep = calibrate(ds.passes, ds.attitude, ds.angles, list(ds.saa.values()), simcal, ChainParams())
    return ds, ev, rep


def test_chain_flags_a_warm_column_not_in_badpix(simcal):
    """About one hit per pixel: the column is flagged HOTPIX in the events and listed in
    the calibration report; the events of its neighbours are only NEAR_BADPIX."""
    from mxt_pipeline.simulate.detector import WarmColumn

    _, ev, rep = _calibrated(simcal, 2123, warm=WarmColumn(rawy=136, hits_per_pixel=1.0))
    assert rep.pixel_search["warm_columns"] == [136]
    y = np.asarray(ev["RAWY"])
    st_ = np.asarray(ev["STATUS"])
    assert np.all(st_[y == 136] & STATUS_BITS["HOTPIX"])
    neighbours = (y == 135) | (y == 137)
    assert np.all(st_[neighbours] & STATUS_BITS["NEAR_BADPIX"])
    assert rep.pixel_search["n_events_flagged"] > 100
    assert rep.steps["warm_pixel_search"] is True


def test_chain_leaves_a_bright_source_alone(simcal):
    """A source of about 30 000 events (max 16 per pixel in the PSF core) on a clean
    field: no pixel or column of it is flagged, no event loses its place."""
    ds, ev, rep = _calibrated(simcal, 0, flux=1e-9)
    assert ds.truth["sources"][0]["photons_detected"] > 20_000
    assert rep.pixel_search["n_pixels_flagged"] == 0 and rep.pixel_search["n_events_flagged"] == 0


def test_chain_clean_field_loses_nothing(simcal):
    _, _, rep = _calibrated(simcal, 10_121)
    assert rep.pixel_search["n_pixels_flagged"] == 0


def test_simulator_warm_column_settings_round_trip_and_hits():
    from mxt_pipeline.errors import MXTInputError
    from mxt_pipeline.simulate.detector import DetectorSettings, WarmColumn

    d = DetectorSettings(warm_columns=({"rawy": 7, "hits_per_pixel": 2.0, "flicker_frames": 3},))
    assert DetectorSettings.from_dict(d.to_dict()) == d
    assert "warm_columns" not in DetectorSettings().to_dict()  # earlier scenarios unchanged
    rng = np.random.default_rng(1)
    f, y, z, q = d.warm_columns[0].hits(np.arange(10_000), rng)
    assert np.all(y == 7) and abs(f.size - 512) < 5 * np.sqrt(512) and np.unique(f).size <= 3
    assert np.all(q > 0) and z.min() >= 0 and z.max() <= 255
    with pytest.raises(MXTInputError):
        WarmColumn(rawy=300)
    with pytest.raises(MXTInputError):
        WarmColumn(rawy=3, rawz_min=10, rawz_max=5)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=4, max_size=4), st.lists(st.integers(0, 300), min_size=4, max_size=4))
def test_concentration_p_is_the_bonferroni_binomial_tail(h, h_ref):
    """The kernel's incomplete-beta tail equals scipy.stats' binomial survival function."""
    from scipy import stats

    from mxt_pipeline.calib.badpix import _PRIOR_EVENTS, _concentration_p

    h_a = np.array([h], float)
    r_a = np.array([h_ref], float)
    prior = np.full(4, 0.25)
    share = np.minimum((r_a + np.sqrt(r_a) + _PRIOR_EVENTS * prior) / (r_a.sum() + _PRIOR_EVENTS), 1.0)
    want = np.minimum(stats.binom.sf(h_a - 1, h_a.sum(), share).min() * 4, 1.0)
    assert _concentration_p(h_a, r_a, prior)[0] == pytest.approx(want, rel=1e-9, abs=1e-300)
