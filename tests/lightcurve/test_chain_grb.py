"""End to end: a Swift-XRT GRB template through the simulator, the calibration chain and
source detection; the light curve of the detected burst follows the template.

Needs the CALDB models and the bundled synthetic CALDB (other parts of the project):
skipped when they are absent.  Without the Swift-XRT data the analytic afterglow is
simulated instead.
"""

from __future__ import annotations

import numpy as np
import pytest

from mxt_pipeline.datapaths import swift_xrt_dir
from mxt_pipeline.errors import MXTCaldbError

from .grb_example import expected_rates


@pytest.fixture(scope="module")
def chain_grb(tmp_path_factory):
    try:
        from mxt_pipeline.calib.chain import calibrate_dataset
        from mxt_pipeline.detect.pipeline import detect_sources
        from mxt_pipeline.simulate.bench import run_scenario
        from mxt_pipeline.simulate.calibration import load_calibration
        from mxt_pipeline.simulate.cases import grb_scenario

        scenario = grb_scenario(1, template="GRB_061121" if swift_xrt_dir() is not None else None)
        calset, _ = load_calibration(None, met=scenario.tstart)
    except ImportError as exc:
        pytest.skip(f"CALDB models not available: {exc}")
    except MXTCaldbError as exc:
        pytest.skip(f"bundled CALDB not available: {exc}")
    root = tmp_path_factory.mktemp("chain_grb")
    run_scenario(scenario, 1, root / "dataset", calset=calset)
    events, _ = calibrate_dataset(root / "dataset", calset=calset, out=root / "l2.fits")
    srclist = detect_sources(events, calset)
    return scenario, events, srclist, root


def test_chain_light_curve_follows_the_template(chain_grb):
    """Fixed 500 s bins of the brightest detected source against the simulated profile
    with a free normalisation (the placeholder PSF correction of the extraction is a
    constant factor for a lobster-eye PSF): reduced chi-square near 1."""
    from mxt_pipeline.lightcurve import extract_light_curves, plot_light_curve

    scenario, events, srclist, root = chain_grb
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
    red = np.sum(((lc.rate - truth) / sigma) ** 2) / dof
    assert 0.5 < red < 2.0, red
    lc.meta["TRIGTIME"] = float(scenario.trigger_time)
    png = plot_light_curve(lc, root / "grb_chain.png")
    assert png is not None and (root / "grb_chain.png").stat().st_size > 0
