"""End to end: a Swift-XRT GRB template through the simulator, the calibration chain and
source detection; the light curve of the detected burst follows the template.

Needs the CALDB models and the bundled synthetic CALDB (other parts of the project):
skipped when they are absent.  Without the Swift-XRT data the analytic afterglow is
simulated instead.  With ``MXT_UPDATE_EXAMPLES=1`` the test rewrites the example preview
``reports/examples/lightcurve_GRB_061121_chain_snr.png``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy import stats

from mxt_pipeline.datapaths import REPO_ROOT, swift_xrt_dir

from .grb_example import expected_rates


@pytest.fixture(scope="module")
def chain_grb(tmp_path_factory):
    from mxt_pipeline.caldb.simulator import load_simulator_calibration
    from mxt_pipeline.detect.pipeline import detect_sources
    from mxt_pipeline.io.simulated_dataset import run_scenario
    from mxt_pipeline.simulate.cases import grb_scenario
    from tests.bricks import calibrate_dataset_dir

    scenario = grb_scenario(1, template="GRB_061121" if swift_xrt_dir() is not None else None)
    calset, _ = load_simulator_calibration(None, met=scenario.tstart)
    root = tmp_path_factory.mktemp("chain_grb")
    run_scenario(scenario, 1, root / "dataset", calset=calset)
    events, _, _, _ = calibrate_dataset_dir(root / "dataset", calset, root / "l2")
    srclist = detect_sources(events, calset)
    return scenario, events, srclist, root


def test_chain_light_curve_follows_the_template(chain_grb, tmp_path):
    """Fixed 500 s bins of the brightest detected source against the simulated profile
    with a free normalisation (the placeholder PSF correction of the extraction is a
    constant factor for a lobster-eye PSF): chi-square p-value in (0.001, 0.999)
    (measured: reduced chi-square 0.67 over 15 degrees of freedom)."""
    from mxt_pipeline.io import atomic_write_bytes
    from mxt_pipeline.lightcurve import extract_light_curves, plot_light_curve
    from mxt_pipeline.lightcurve.preview import figure_png

    scenario, events, srclist, _ = chain_grb
    assert len(srclist) >= 1
    (lc,) = extract_light_curves(events, srclist[:1], binning_method="fixed", bin_width=500.0)
    prof = scenario.sources[0].profile
    shape = expected_rates(prof, 1.0, lc.lo, lc.hi, events.gti)
    # Poisson maximum-likelihood normalisation: total net counts over total model.
    norm = np.sum(lc.rate * lc.exposure) / np.sum(shape * lc.exposure)
    truth = norm * shape
    sigma = np.where(lc.rate < truth, lc.err_hi, lc.err_lo)
    dof = len(lc) - 1
    assert dof >= 8
    chi2 = float(np.sum(((lc.rate - truth) / sigma) ** 2))
    assert 0.001 < stats.chi2.sf(chi2, dof) < 0.999, chi2 / dof
    # A constant source (the exposure-weighted mean rate) is rejected: the test sees
    # the decay.
    flat = np.full(len(lc), np.sum(lc.rate * lc.exposure) / lc.exposure.sum())
    sigma_flat = np.where(lc.rate < flat, lc.err_hi, lc.err_lo)
    assert stats.chi2.sf(float(np.sum(((lc.rate - flat) / sigma_flat) ** 2)), dof) < 1e-6

    # The preview of the example (S/N bins, log-log axes since the trigger, gaps).
    (snr,) = extract_light_curves(events, srclist[:1], binning_method="snr", target_snr=5.0)
    snr.meta["TRIGTIME"] = float(scenario.trigger_time)
    name = "lightcurve_GRB_061121_chain_snr.png"
    target = REPO_ROOT / "reports" / "examples" / name if os.environ.get("MXT_UPDATE_EXAMPLES") else tmp_path / name
    fig = plot_light_curve(snr, title=f"MXT light curve: {scenario.object} through the simulator, "
                           "calibration chain and detection (S/N 5 bins)")  # fmt: skip
    atomic_write_bytes(target, figure_png(fig))
    assert target.read_bytes()[:4] == b"\x89PNG"
    assert {t.get_text() for t in fig.axes[0].texts} >= set(events.gaps.origin.tolist()) - {"TELEMETRY"}
