"""The observation of the detection benchmark: 3 sources, 2 bands, 256 x 256.

The PSF goes through the detection's calibration path (band averages, separable
tables): the CALDB's when its models load, else the energy- and angle-dependent
analytic lobster-eye double.
"""

from __future__ import annotations

import numpy as np

from mxt_pipeline.acceptance.detection import ValidationSetup, simulate_problem
from mxt_pipeline.detect.bandpsf import DetectionCalibration
from mxt_pipeline.errors import MXTCaldbError

from .psf_double import EnergyLobsterPSF
from .teldef_double import FlatTeldef

_SETUP: list[ValidationSetup] = []


def bench_setup() -> ValidationSetup:
    if not _SETUP:
        try:
            _SETUP.append(ValidationSetup.from_caldb())
        except MXTCaldbError:
            cal = DetectionCalibration(psf=EnergyLobsterPSF(), teldef=FlatTeldef(),
                                       effective_area=lambda e: 60.0 * np.exp(-np.asarray(e) / 3.0))
            _SETUP.append(ValidationSetup.from_calibration(cal, name="analytic-double"))
    return _SETUP[0]


def bench_problem(y, z, seed: int = 1):
    """Poisson images of three sources (300, 200, 150 counts) over the standard background."""
    setup = bench_setup()
    counts = np.array([300.0, 200.0, 150.0])[:, None] * setup.band_fractions[None, :]
    rng = np.random.default_rng(seed)
    return simulate_problem(setup, y, z, counts, rng), setup.name
