"""Spectral calibration: CTI inverse, gain/offset, dither, PI, and the calibration lines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from mxt_pipeline.calib import _kernels
from mxt_pipeline.calib.chain import ChainParams, calibrate
from mxt_pipeline.calib.energy import (
    CTIInverseTable,
    adc_dither,
    dither_for_keys,
    event_energies,
    hit_energies,
    pi_channels,
)
from mxt_pipeline.datamodel import GTI, AngleTable, Attitude, RawHits
from mxt_pipeline.errors import MXTCalibrationError

from .linegen import make_line_hits
from .standins import StandInCTI, StandInGainOffset


@pytest.fixture(scope="module")
def cti_table():
    return CTIInverseTable.from_model(StandInCTI())


@given(e=st.floats(0.05, 19.9), z=st.integers(0, 255))
def test_cti_table_matches_exact_inverse(cti_table, e, z):
    """Tabulated inverse within 1e-6 keV (1 meV) of the exact root of the model."""
    cti = StandInCTI()
    exact = cti.correct(np.array([e]), np.array([z]))
    got = cti_table(np.array([e]), np.array([z]))
    assert abs(got[0] - exact[0]) < 1e-6
    # And it inverts the forward model.
    assert abs(cti.apply(got, np.array([z]))[0] - e) < 1e-6


def test_cti_table_outside_grid_and_kernel(cti_table):
    e = np.array([-0.01, 0.0, 25.0, 5.0])
    z = np.array([10, 10, 255, 0])
    got = cti_table(e, z)
    assert got[0] < 0 and got[1] == 0.0
    # Beyond the grid, the relative correction of the last node (within 0.2%).
    assert got[2] == pytest.approx(StandInCTI().correct(np.array([25.0]), np.array([255]))[0], rel=2e-3)
    if _kernels.HAVE_NUMBA:
        rng = np.random.default_rng(1)
        ee = rng.uniform(-1, 30, 5000)
        zz = rng.integers(0, 256, 5000)
        numpy_path = CTIInverseTable.__call__(cti_table, ee.reshape(1, -1), zz.reshape(1, -1)).ravel()
        np.testing.assert_allclose(cti_table(ee, zz), numpy_path, rtol=0, atol=1e-12)


def test_cti_model_must_be_monotonic():
    class Broken:
        def correct(self, e, z):
            return -np.asarray(e)

    with pytest.raises(MXTCalibrationError, match="increase"):
        CTIInverseTable.from_model(Broken())

    class ZeroAtTheFirstNode:
        """Increasing, but a measured energy > 0 corrected to exactly 0 keV."""

        first = np.linspace(0.0, np.sqrt(20.0), 2001)[1] ** 2

        def correct(self, e, z):
            return np.asarray(e) - self.first

    with pytest.raises(MXTCalibrationError, match="increase"):
        CTIInverseTable.from_model(ZeroAtTheFirstNode())


@given(e=st.floats(0.1, 12.0), y=st.integers(0, 255), z=st.integers(0, 255))
def test_hit_energy_inverts_the_signal_chain(cti_table, e, y, z):
    """E -> CTI -> gain/offset (no rounding) -> hit_energies gives E back (2e-6 keV)."""
    cti, go = StandInCTI(), StandInGainOffset()
    pha = go.to_pha(cti.apply(np.array([e]), np.array([z])), np.array([y]))
    back = hit_energies(pha, np.array([y]), np.array([z]), go, cti_table)
    assert abs(back[0] - e) < 2e-6


def test_dither_is_uniform_reproducible_and_order_free():
    keys = np.arange(200_000, dtype=np.int64) * 7919 + 12345
    u = adc_dither(keys)
    assert u.min() >= -0.5 and u.max() < 0.5
    # KS test against U(-0.5, 0.5): p < 1e-3 would fail (fixed keys, deterministic).
    assert stats.kstest(u + 0.5, "uniform").pvalue > 1e-3
    perm = np.random.default_rng(0).permutation(keys.size)
    np.testing.assert_array_equal(adc_dither(keys[perm]), u[perm])
    np.testing.assert_array_equal(dither_for_keys(keys), u)
    # Neighbouring keys are not correlated.
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


def test_pi_channels():
    np.testing.assert_array_equal(pi_channels([0.0, 0.00999, 0.01, 1.4875, -1.0, 11.0]), [0, 0, 1, 148, 0, 1023])


def test_event_energies_caps_multiplicity(calset):
    e = event_energies(np.array([1.5, 1.5, 1.5]), np.array([4, 5, 9]), calset.multiplicity)
    assert e[0] == e[1] == e[2]
    np.testing.assert_array_equal(event_energies(np.array([1.0]), np.array([2]), None), [1.0])


# ---- calibration lines over the whole detector ------------------------------------------


def _line_run(calset, energy, seed, cti_correction=True, n=40000):
    rng = np.random.default_rng(seed)
    hits, _ = make_line_hits(energy, n, rng, calset, photons_per_frame=10)
    t = hits["TIME"]
    passes = [RawHits(hits, gti=GTI([t[0] - 1.0], [t[-1] + 1.0]), meta={"OBS_ID": "LINES", "PASS_ID": 1})]
    ts = np.arange(t[0] - 10.0, t[-1] + 11.0, 5.0)
    one = np.ones_like(ts)
    att = Attitude.from_pointing(ts, 83.0 * one, 22.0 * one, 0.0 * one)
    ang = AngleTable.from_columns(TIME=ts, EARTH_ELV=60.0 * one, SUN_ANGLE=90.0 * one, MOON_ANGLE=90.0 * one)
    params = ChainParams(cti_correction=cti_correction, hot_pixel_search=False)
    events, report = calibrate(passes, att, ang, None, calset, params)
    return events, report


def _centroid(x, truth):
    """Median of the events within +-300 eV of the line (the line core)."""
    sel = np.abs(x - truth) < 0.3
    return np.median(x[sel]), sel.sum()


def _fwhm(x, truth):
    """FWHM (keV) of a Gaussian fitted to the histogram core (+-1.5 sigma of the peak)."""
    sel = np.abs(x - truth) < 0.3
    x = x[sel]
    s = 1.4826 * np.median(np.abs(x - np.median(x)))
    for _ in range(3):
        core = x[np.abs(x - np.median(x)) < 1.5 * s]
        h, edges = np.histogram(core, bins=40)
        mid = 0.5 * (edges[1:] + edges[:-1])
        # Gaussian fit by a parabola on log counts.
        ok = h > 0
        a, b, _ = np.polyfit(mid[ok], np.log(h[ok]), 2, w=np.sqrt(h[ok]))
        s = np.sqrt(-1.0 / (2.0 * a))
    return 2.3548 * s


@pytest.mark.parametrize(("line", "seed"), [(1.4867, 1), (5.895, 2)])
def test_lines_calibrated_in_every_row_and_column(calset, line, seed):
    """Al K and Mn K: centroid within 5 eV of the truth in each of 8 row and 8 column bins.

    Per bin about 5000 events; the median's statistical error is 1.25 sigma / sqrt(N),
    about 0.7 eV at 1.5 keV and 1.1 eV at 5.9 keV, so a 5 eV tolerance leaves more than
    4 sigma: false failure rate below 1e-4 (seeds fixed).
    """
    events, _ = _line_run(calset, line, seed)
    e = np.asarray(events["ENERGY"], dtype=float)
    good = (np.asarray(events["STATUS"]) & 0b1111) == 0  # BADPIX/HOT/NEAR/BORDER excluded
    for axis in ("RAWY", "RAWZ"):
        b = np.asarray(events[axis]) // 32
        for k in range(8):
            c, n = _centroid(e[good & (b == k)], line)
            assert n > 3000
            assert abs(c - line) < 0.005, (axis, k, (c - line) * 1000)
    if line < 2:
        assert _fwhm(e[good], line) <= 0.080


def test_without_cti_correction_the_centroid_drifts_with_row(calset):
    """The same Al K data with the CTI correction switched off: the line sinks with RAWZ.

    Expected loss at the last row bin (about 1 - (1 - 2e-4 / sqrt(1.49)) ** 240): 4 %,
    i.e. 55-60 eV; the corrected run stays flat within 5 eV (test above).
    """
    line = 1.4867
    off, _ = _line_run(calset, line, 1, cti_correction=False)
    on, _ = _line_run(calset, line, 1, cti_correction=True)
    shifts = {}
    for name, ev in (("off", off), ("on", on)):
        e = np.asarray(ev["ENERGY"], dtype=float)
        zbin = np.asarray(ev["RAWZ"]) // 32
        shifts[name] = np.array([_centroid(e[zbin == k], line)[0] - line for k in range(8)])
    assert np.all(np.diff(shifts["off"]) < 0)  # monotonic drift with row
    assert shifts["off"][-1] < -0.04
    assert np.max(np.abs(shifts["on"])) < 0.005
