"""Calibration lines end to end: simulation bench -> L1 passes -> chain, bundled CALDB.

The detector physics of the simulator (Fano noise, charge cloud splitting, CTI losses,
gain and offset per column, read noise) and the correction of the chain both come
from the bundled synthetic CALDB (``fixtures_caldb/``), as in operations: the test shows
that the chain undoes what the CALDB says the detector does, on data it did not make.
"""

from __future__ import annotations

import numpy as np
import pytest

from mxt_pipeline.calib.chain import ChainParams, calibrate

from .test_energy import _centroid, _fwhm

AL_K, MN_K = 1.4867, 5.8951
TSTART = 300_000_000.0


@pytest.fixture(scope="module")
def bench():
    from mxt_pipeline.caldb import products
    from mxt_pipeline.simulate.bench import simulate
    from mxt_pipeline.simulate.scenario import scenario_from_dict

    scenario = scenario_from_dict(
        {
            "obs_id": "CALLINES",
            "object": "calibration lines",
            "tstart": TSTART,
            "duration": 600.0,
            "pointing": {"ra": 270.0, "dec": 60.0, "roll": 0.0, "jitter_arcsec": 2.0, "jitter_tau_s": 30.0},
            "orbit": {"altitude_km": 625.0, "inclination_deg": 30.0, "raan_deg": 0.0, "arg_lat_deg": 0.0,
                      "epoch": TSTART},
            "sources": [],
            "background": {"cxb": False, "particle": {},
                           "calibration": {"lines": [{"energy": AL_K, "rate": 200.0},
                                                     {"energy": MN_K, "rate": 200.0}]}},
            "passes": {"mode": "explicit", "passes": [{"pass_id": 1, "station": "GS-A", "start": TSTART,
                                                       "stop": TSTART + 600.0}]},
        }
    )  # fmt: skip
    calset = products.CalibrationSet.from_caldb(None, TSTART)  # the bundled CALDB
    return simulate(scenario, 7, calset), calset


def _run(bench, **params):
    ds, calset = bench
    events, _ = calibrate(ds.passes, ds.attitude, ds.angles, list(ds.saa.values()), calset, ChainParams(**params))
    e = np.asarray(events["ENERGY"], dtype=float)
    good = (np.asarray(events["STATUS"]) & 0b1111) == 0
    return events, e, good


@pytest.mark.parametrize("line", [AL_K, MN_K])
def test_bench_lines_within_5_ev_in_every_row_and_column_bin(bench, line):
    """8 row and 8 column bins: |centroid - truth| < 5 eV; FWHM at Al K <= 80 eV.

    About 6000 Al K and 3000 Mn K events per bin: the statistical error of the median
    (1.25 sigma / sqrt(N)) is below 1 eV, so 5 eV tests the calibration, not the noise.
    """
    events, e, good = _run(bench)
    for axis in ("RAWY", "RAWZ"):
        b = np.asarray(events[axis]) // 32
        for k in range(8):
            c, n = _centroid(e[good & (b == k)], line)
            assert n > 1500, (axis, k, n)
            assert abs(c - line) < 0.005, (axis, k, (c - line) * 1000)
    if line < 2:
        assert _fwhm(e[good], line) <= 0.080


def test_bench_lines_drift_with_row_without_cti_correction(bench):
    """Switching the CTI correction off makes the Al K centroid sink with the row number
    by what the CALDB CTI model predicts for charge moved over RAWZ+1 rows; switched on,
    the same data are flat: the correction is what removes the drift.

    The bundled CTI is small (about 1.3e-5 per transfer at 1.5 keV: about 5 eV lost at the
    far end of the chip), so the test compares bin by bin with the prediction (1.5 eV,
    about 3 sigma of the difference of two medians of 6000 events) rather than
    against the 5 eV requirement.
    """
    _, calset = bench
    shifts, centres = {}, {}
    for name, on in (("off", False), ("on", True)):
        events, e, good = _run(bench, cti_correction=on)
        z = np.asarray(events["RAWZ"])
        zbin = z // 32
        shifts[name] = np.array([_centroid(e[good & (zbin == k)], AL_K)[0] - AL_K for k in range(8)])
        centres[name] = np.array([np.median(z[good & (zbin == k)]) for k in range(8)])
    predicted = np.asarray(calset.cti.apply(np.full(8, AL_K), centres["off"]), dtype=float) - AL_K
    assert np.all(np.diff(predicted) < 0) and predicted[-1] < -0.003  # the model loses charge
    np.testing.assert_allclose(shifts["off"] - shifts["on"], predicted, atol=0.0015)
    slope_off = np.polyfit(centres["off"], shifts["off"], 1)[0]
    slope_on = np.polyfit(centres["on"], shifts["on"], 1)[0]
    assert slope_off < -1.5e-5  # keV per row: > 4 eV across the chip
    assert abs(slope_on) < 0.5 * abs(slope_off)
    assert np.max(np.abs(shifts["on"])) < 0.005
