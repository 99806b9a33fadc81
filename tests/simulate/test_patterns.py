"""Event patterns follow the CALDB ``PATTERN`` model (fixed seeds; false failure 1e-3 per test).

Isolated photons (one per 100 ms frame, uniform impact points) go through the whole
camera response (charge cloud, read noise, CTI, gain/offset, on-board threshold); the
number of telemetered pixels per photon (single, double, triple, quadruple) is compared
with the distribution predicted from the CALDB alone: a Gaussian cloud of width
``PatternModel.cloud_sigma_um(E)`` integrated over the 3 x 3 pixels around the impact
pixel, each pixel above the split threshold with probability
``Phi((share - threshold) / read_noise)`` (independent pixels: a Poisson-binomial
count), averaged over the impact point in the pixel.  Neglected in the prediction:
the Fano spread of the charge and the CTI loss (shifts of a pixel share of less than
0.1 eV at the threshold, against 8 eV of read noise).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from mxt_pipeline.simulate.detector import DetectorModel, DetectorSettings

from .simkit import chi2_pvalue

P_MIN = 1e-3
PIXEL_UM = 75.0


def _predicted_multiplicity(pattern, energy: float, n_grid: int = 120) -> np.ndarray:
    """P(k pixels above the split threshold), k = 0..9, from the CALDB pattern model."""
    sigma = float(np.asarray(pattern.cloud_sigma_um(np.array([energy])))[0]) / PIXEL_UM
    f = (np.arange(n_grid) + 0.5) / n_grid - 0.5  # impact offsets from the pixel centre
    bounds = np.stack([np.full(n_grid, -np.inf), -0.5 - f, 0.5 - f, np.full(n_grid, np.inf)], axis=1)
    share_1d = np.diff(ndtr(bounds / sigma), axis=1)  # (n_grid, 3): left, centre, right
    shares = energy * share_1d[:, None, :, None] * share_1d[None, :, None, :]  # (fy, fz, 3, 3)
    noise = float(pattern.read_noise_ev) / 1000.0
    p = ndtr((shares.reshape(n_grid * n_grid, 9) - float(pattern.split_threshold)) / noise)
    dist = np.zeros((p.shape[0], 10))
    dist[:, 0] = 1.0
    for j in range(9):  # Poisson-binomial by successive convolution
        dist[:, 1:] = dist[:, 1:] * (1 - p[:, j:j + 1]) + dist[:, :-1] * p[:, j:j + 1]
        dist[:, 0] *= 1 - p[:, j]
    return dist.mean(axis=0)


@pytest.mark.parametrize("energy", [0.6, 1.5, 6.0])
def test_pattern_multiplicities_follow_the_caldb(calset, energy):
    det = DetectorModel.from_calibration(calset, DetectorSettings(mask_bad_pixels=False))
    rng = np.random.default_rng(int(energy * 100))
    n = 20000
    rawy = rng.uniform(2.5, 252.5, n)
    rawz = rng.uniform(2.5, 252.5, n)
    e = np.full(n, energy)
    frame = np.arange(n)
    hits, _ = det.respond(frame, rawy, rawz, det.charge_of(e, rng), e, salt=int(energy * 100))
    mult = np.bincount(np.bincount(hits["FRAME"], minlength=n), minlength=10)[:10]
    pred = _predicted_multiplicity(calset.pattern, energy)
    # Photons with no telemetered pixel are impossible at these energies (the impact
    # pixel holds at least a quarter of the charge, far above the threshold).
    assert mult[0] == 0 and pred[0] < 1e-9
    assert np.all(mult[5:] == 0) and pred[5:].sum() < 1e-6
    expected = pred[1:5] / pred[1:5].sum() * n
    assert chi2_pvalue(mult[1:5], expected, ddof=0) > P_MIN, (mult[1:5], expected.round(1))
    # The CALDB cloud grows with energy: splits are common enough to test at each energy.
    assert mult[2] > 500
