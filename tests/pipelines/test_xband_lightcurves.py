"""The ``lightcurves`` brick: PSF encircled fraction, source order, empty cases, the burst first."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from mxt_pipeline.datamodel import GTI, EventList
from mxt_pipeline.detect.bands import EnergyBand
from mxt_pipeline.detect.srclist import empty_source_table
from mxt_pipeline.pipelines import BrickStatus
from mxt_pipeline.pipelines.bricks.codecs import SourceList
from mxt_pipeline.pipelines.bricks.lightcurves import (
    LIGHTCURVES,
    psf_encircled_fraction,
    source_order,
)
from mxt_pipeline.pipelines.registry import get_pipeline

from .xband_data import GaussianPSF

BANDS = [EnergyBand(0.2, 2), EnergyBand(2, 10)]


class CrossPSF:
    """A lobster-eye-like density: a Gaussian spot holding ``f_spot`` of the flux and two
    Gaussian arms (width ``w``, length scale ``L``) along the axes, truncated at 256 pixels."""

    def __init__(self, f_spot=0.5, sigma=2.0, w=1.0, length=40.0):
        self.f, self.s, self.w, self.length = f_spot, sigma, w, length

    def density(self, dy, dz, energy, theta):
        dy, dz = np.asarray(dy, float), np.asarray(dz, float)
        spot = np.exp(-0.5 * (dy**2 + dz**2) / self.s**2) / (2 * np.pi * self.s**2)

        def arm(a, b):  # along a, narrow in b
            return (np.exp(-np.abs(a) / self.length) / (2 * self.length)) * np.exp(-0.5 * b**2 / self.w**2) / (
                np.sqrt(2 * np.pi) * self.w)

        return self.f * spot + 0.5 * (1 - self.f) * (arm(dy, dz) + arm(dz, dy))


@pytest.mark.parametrize("sigma", [1.5, 3.0, 8.0])
def test_density_psf_encircled_fraction_matches_the_gaussian_formula(sigma):
    eef = psf_encircled_fraction(GaussianPSF(sigma), 1.5)
    r = np.array([0.5, 1.0, 2.0, 5.0, 10.0, 30.0]) * sigma / 3.0
    got = np.array([eef(x) for x in r])
    np.testing.assert_allclose(got, -np.expm1(-0.5 * (r / sigma) ** 2), atol=2e-4)
    assert eef(0.0) == 0.0 and eef(1e4) == pytest.approx(1.0, abs=2e-4)


def test_cross_arms_count_in_the_fraction():
    """With half the flux in the arms, a circle of 5 spot sigmas holds only about half."""
    psf = CrossPSF()
    eef = psf_encircled_fraction(psf, 1.5)
    # Monte-Carlo reference of the fraction inside r = 10 pixels.
    rng = np.random.default_rng(1)
    n = 400_000
    spot = rng.random(n) < psf.f
    a = rng.laplace(0.0, psf.length, n)
    b = rng.normal(0.0, psf.w, n)
    axis = rng.random(n) < 0.5
    dy = np.where(spot, rng.normal(0, psf.s, n), np.where(axis, a, b))
    dz = np.where(spot, rng.normal(0, psf.s, n), np.where(axis, b, a))
    keep = np.hypot(dy, dz) < 256.0
    mc = np.mean(np.hypot(dy[keep], dz[keep]) < 10.0)
    assert eef(10.0) == pytest.approx(mc, abs=4e-3)
    assert 0.5 < eef(10.0) < 0.75


def test_model_encircled_fraction_is_used_when_present():
    class Tabulated:
        def encircled_fraction(self, r, energy, theta):
            return min(1.0, r / 20.0) if energy == 1.5 else 0.0

    class RadiusOnly:
        def encircled_fraction(self, r):
            return min(1.0, r / 10.0)

    assert psf_encircled_fraction(Tabulated(), 1.5)(5.0) == pytest.approx(0.25)
    assert psf_encircled_fraction(RadiusOnly(), 1.5)(5.0) == pytest.approx(0.5)
    assert psf_encircled_fraction(None, 1.5) is None
    assert psf_encircled_fraction(object(), 1.5) is None


def test_source_order_puts_the_burst_first_and_bounds_the_count():
    t = Table({"SRC_ID": [1, 2, 3, 4]})
    assert source_order(t, None, 10) == [1, 2, 3, 4]
    assert source_order(t, {"detected": True, "source": {"src_id": 3}}, 10) == [3, 1, 2, 4]
    assert source_order(t, {"detected": True, "source": {"src_id": 3}}, 2) == [3, 1]
    assert source_order(t, {"detected": False}, 2) == [1, 2]
    assert source_order(Table({"SRC_ID": np.zeros(0, int)}), None, 5) == []


def _events(n=0, exposure=1000.0):
    rng = np.random.default_rng(2)
    t = EventList.empty_table()
    cols = {c: np.zeros(n, dtype=t[c].dtype) for c in t.colnames}
    cols["TIME"] = np.sort(rng.uniform(0, max(exposure, 1.0), n))
    cols["X"] = rng.uniform(100, 400, n).astype(np.float32)
    cols["Y"] = rng.uniform(100, 400, n).astype(np.float32)
    cols["ENERGY"] = rng.uniform(0.3, 9, n).astype(np.float32)
    cols["MULTIPLICITY"] = np.ones(n, np.int16)
    gti = GTI([0.0], [exposure]) if exposure > 0 else GTI([], [])
    return EventList(Table(cols), gti=gti, meta={"OBS_ID": "00000042", "RA_NOM": 100.0, "DEC_NOM": 20.0})


def test_empty_field_gives_no_light_curve_and_success(tmp_path):
    src = SourceList(empty_source_table(2), BANDS, "00000042", 25.0, 9.0)
    res = LIGHTCURVES.run_standalone({"events": _events(50), "srclist": src}, out_dir=tmp_path, caldb=_GaussianCal())
    assert res.status is BrickStatus.SUCCESS and res.outputs == [] and res.metrics["n_light_curves"] == 0


def test_no_good_time_is_no_data(tmp_path):
    src = SourceList(empty_source_table(2), BANDS, "00000042", 25.0, 9.0)
    res = LIGHTCURVES.run_standalone({"events": _events(0, exposure=0), "srclist": src}, out_dir=tmp_path,
                                     caldb=_GaussianCal())  # fmt: skip
    assert res.status is BrickStatus.NO_DATA and res.outputs == []


class _GaussianCal:
    psf = GaussianPSF(3.0)


def test_declared_in_both_pipelines_after_detection_and_non_critical():
    for name in ("xband-gp", "xband-cp"):
        p = get_pipeline(name)
        order = [b.name for b in p.bricks]
        assert order.index("detect") < order.index("lightcurves") < order.index("image_preview")
        assert "PSF" in p.caldb_codes
        assert not p.brick("lightcurves").critical
    cp = [b.name for b in get_pipeline("xband-cp").bricks]
    assert cp.index("burst") < cp.index("lightcurves")
