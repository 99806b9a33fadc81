"""A GRB afterglow (real Swift-XRT template, or the analytic canonical burst) through
extraction, binning and gap-aware rates: the light curve follows the template."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mxt_pipeline.datapaths import swift_xrt_dir
from mxt_pipeline.lightcurve import extract_light_curves
from mxt_pipeline.simulate.timeprofiles import SwiftTemplate

from .grb_example import expected_rates, grb_observation
from .simulated import REGION, source_list


@pytest.fixture(scope="module")
def grb():
    return grb_observation()


def _chi2(lc, truth):
    sigma = np.where(lc.rate < truth, lc.err_hi, lc.err_lo)
    return float(np.sum(((lc.rate - truth) / sigma) ** 2))


@pytest.mark.parametrize("method", ["snr", "blocks", "fixed"])
def test_recovered_light_curve_follows_the_template(grb, method):
    """Chi-square of the rates about the template's mean over each bin's good time
    (residuals scaled by the error on the truth's side).  Fixed and S/N bins: p-value
    in (0.001, 0.999).  Block edges are placed by the data, at the fluctuations that
    make neighbouring blocks differ, so their rates scatter more than independent bins
    (measured here: reduced chi-square 2.5 with the Swift template, 1.3 with the
    analytic one): only a reduced chi-square below 4 is asked of them."""
    events, gti, prof, scale, _ = grb
    (lc,) = extract_light_curves(events, source_list([(128.0, 128.0)]), region=REGION, binning_method=method,
                                 target_snr=5.0, bin_width=1000.0, p0=0.01)  # fmt: skip
    truth = expected_rates(prof, scale, lc.lo, lc.hi, gti)
    chi2 = _chi2(lc, truth)
    dof = len(lc)
    # Blocks follow the changes of the rate, not the counts: the smooth analytic decay
    # gets fewer (7 here) than the flaring Swift template.
    assert dof >= (5 if method == "blocks" else 8), (method, dof)
    p = stats.chi2.sf(chi2, dof)
    if method == "blocks":
        assert chi2 / dof < 4.0, (chi2, dof)
    else:
        assert 0.001 < p < 0.999, (method, chi2, dof)
    # A template that is off (rates 30 % too high) is rejected on the same bins.
    assert stats.chi2.sf(_chi2(lc, 1.3 * truth), dof) < 1e-3


def test_template_comes_from_the_real_data_when_present(grb):
    _, _, prof, _, label = grb
    if swift_xrt_dir() is None:
        pytest.skip("Swift-XRT light curves absent: the analytic fallback is in use")
    assert isinstance(prof, SwiftTemplate) and "GRB_061121" in label


def test_analytic_fallback_without_the_data(monkeypatch):
    """Without the Swift-XRT folder the canonical afterglow of the simulator is used, and
    the light curve follows it just as well."""
    from mxt_pipeline.simulate.timeprofiles import CanonicalGRB

    from . import grb_example

    monkeypatch.setattr(grb_example, "swift_xrt_dir", lambda: None)
    events, gti, prof, scale, label = grb_example.grb_observation(seed=6)
    assert isinstance(prof, CanonicalGRB) and "analytic" in label
    (lc,) = extract_light_curves(events, source_list([(128.0, 128.0)]), region=REGION,
                                 binning_method="fixed", bin_width=1000.0)
    truth = expected_rates(prof, scale, lc.lo, lc.hi, gti)
    assert 0.001 < stats.chi2.sf(_chi2(lc, truth), len(lc)) < 0.999
