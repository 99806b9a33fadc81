"""Fixtures of the calibration-chain tests."""

from __future__ import annotations

import pytest

from .standins import StandInTeldef


@pytest.fixture(scope="module", params=["standin", "caldb"])
def teldef(request):
    """A telescope definition: the test stand-in (rotated, flipped, offset) and the CALDB one."""
    if request.param == "standin":
        return StandInTeldef(centre=(130.2, 125.7), rotation_deg=90.0, flip_z=True, offset_arcmin=(0.4, -0.3))
    from mxt_pipeline.caldb.products import Teldef

    return Teldef.default()


def _derive_multiplicity(cs, seed=2024):
    """Multiplicity factors k_m(E) by Monte Carlo of the test charge-splitting model.

    As a CALDB MULTIPLICITY file is derived from the detector model: for mono-energetic
    photons (no CTI, so that only the split losses are measured), k_m(E) = E / median
    of the summed energy of the events of multiplicity m.
    """
    import numpy as np

    from mxt_pipeline.calib.badpix import pixel_status_map
    from mxt_pipeline.calib.chain import calibrate_hits
    from mxt_pipeline.datamodel import Attitude

    from .linegen import make_line_hits
    from .standins import StandInMultiplicity

    rng = np.random.default_rng(seed)
    grid = np.array([0.2, 0.3, 0.5, 0.8, 1.2, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0])
    factors = np.ones((4, grid.size))
    att = Attitude.from_pointing([0.0], [0.0], [0.0], [0.0])
    status = pixel_status_map(np.zeros((256, 256), dtype=bool))
    models = {"teldef": cs.teldef, "gainoff": cs.gainoff, "multiplicity": None}
    for k, energy in enumerate(grid):
        hits, _ = make_line_hits(energy, 30000, rng, cs, apply_cti=False)
        table, _ = calibrate_hits(
            hits, att, models, ra_nom=0.0, dec_nom=0.0, split=cs.pattern.split_threshold,
            primary=cs.pattern.primary_threshold, status_map=status, cti_inverse=None,
            multiplicity_correction=False,
        )  # fmt: skip
        e = np.asarray(table["ENERGY"], dtype=float)
        m = np.asarray(table["MULTIPLICITY"])
        for mult in range(1, 5):
            sel = m == mult
            if sel.sum() >= 200:
                factors[mult - 1, k] = energy / np.median(e[sel])
            elif k:
                factors[mult - 1, k] = factors[mult - 1, k - 1]
    return StandInMultiplicity(grid, factors)


@pytest.fixture(scope="session")
def calset():
    """Stand-in calibration set with multiplicity factors derived by Monte Carlo."""
    from .standins import StandInCalibrationSet

    cs = StandInCalibrationSet()
    cs.multiplicity = _derive_multiplicity(cs)
    return cs
