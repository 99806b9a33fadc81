"""Fixtures of the detection tests: an analytic PSF, a detection grid, simulated images."""

from __future__ import annotations

import numpy as np
import pytest

from mxt_pipeline.detect.likelihood import BandData
from mxt_pipeline.detect.problem import DetectionProblem

from .psf_double import AnalyticLobsterPSF


@pytest.fixture(scope="session")
def analytic_psf():
    """Spot sigma 3 px (FWHM 7.1 px), arms gamma 6 px, halo sigma 25 px."""
    return AnalyticLobsterPSF()


def grid(n: int = 256) -> np.ndarray:
    """Pixel edges of an n-pixel axis centred on the optical axis."""
    return np.arange(n + 1, dtype=float) - n / 2


def simulate_problem(psf, y, z, counts, background, *, rng, n=256, exposure=None, margin=128.0):
    """Poisson images of point sources (same PSF in every band) as a DetectionProblem."""
    edges = grid(n)
    counts = np.atleast_2d(np.asarray(counts, float))
    n_bands = counts.shape[1]
    g = np.ones((n, n)) if exposure is None else exposure
    empty = DetectionProblem(edges, edges, [BandData(np.zeros((n, n), int), g)] * n_bands, [psf] * n_bands, margin=margin)
    if len(np.atleast_1d(y)):
        images = empty.model.model_images(y, z, 0.0, counts, background)
    else:
        images = [background[b] * g for b in range(n_bands)]
    bands = [BandData(rng.poisson(m), g) for m in images]
    return DetectionProblem(edges, edges, bands, [psf] * n_bands, margin=margin)
