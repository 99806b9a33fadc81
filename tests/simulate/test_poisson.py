"""Counts are Poisson distributed: histograms of counts against ``scipy.stats.poisson``.

A simulator that fixed the number of photons to ``rate x time`` (or drew it from any
other law) would keep the mean right and fail here.  Chi-square tests fail when
p < 1e-3 (false-failure rate 0.1 % each); dispersion-index tests at 4.5 sigma (false
failure < 1e-5).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from mxt_pipeline.simulate.photons import arrival_times
from mxt_pipeline.simulate.sources import Source, source_photons
from mxt_pipeline.simulate.spectra import PowerLaw
from mxt_pipeline.simulate.timeprofiles import Constant

from .simkit import T0, chi2_pvalue, det_position, quiet_context, sky_at

P_MIN = 1e-3


def _poisson_histogram_pvalue(counts: np.ndarray, mu: float, ddof: int = 0) -> float:
    """Chi-square p-value of the histogram of ``counts`` against Poisson(mu) (tails pooled;
    ``ddof=1`` when ``mu`` was estimated from ``counts``)."""
    counts = np.asarray(counts, dtype=np.int64)
    lo, hi = int(stats.poisson.ppf(1e-4, mu)), int(stats.poisson.isf(1e-4, mu))
    k = np.arange(lo, hi + 1)
    obs = np.r_[np.count_nonzero(counts < lo), [np.count_nonzero(counts == x) for x in k],
                np.count_nonzero(counts > hi)]  # fmt: skip
    exp = counts.size * np.r_[stats.poisson.cdf(lo - 1, mu), stats.poisson.pmf(k, mu), stats.poisson.sf(hi, mu)]
    return chi2_pvalue(obs, exp, ddof=ddof)


def _dispersion_ok(counts: np.ndarray) -> bool:
    """Index of dispersion ``var / mean`` within 4.5 sigma of 1 (its sd is sqrt(2 / (n - 1)))."""
    c = np.asarray(counts, dtype=float)
    d = c.var(ddof=1) / c.mean()
    return abs(d - 1.0) < 4.5 * np.sqrt(2.0 / (c.size - 1))


def test_photon_numbers_of_independent_runs_are_poisson():
    """The number of photons in 600 independent runs of mean 40 follows Poisson(40)."""
    prof = Constant()
    mu = 40.0
    n = np.array([arrival_times(prof, mu / 100.0, T0, T0 + 100.0, np.random.default_rng(s)).size for s in range(600)])
    assert _poisson_histogram_pvalue(n, mu) > P_MIN
    assert _dispersion_ok(n)
    assert abs(n.mean() - mu) < 4.5 * np.sqrt(mu / n.size)


def test_detected_counts_per_bin_are_poisson(calset):
    """Detected photons of a constant source in 2 s bins follow Poisson with the mean rate.

    Detection thins the Poisson process, so the counts stay Poisson (no pile-up at
    this rate: about 2 photons per second, 0.2 per 100 ms frame).
    """
    duration = 2000.0
    ctx = quiet_context(calset, duration)
    ra, dec = sky_at(3.0, 2.0)
    spec = PowerLaw(index=2.0, nh=0.05)
    probe = Source("probe", ra, dec, 1.0, spec)
    y0, z0 = det_position(ctx, ra, dec)
    theta = float(ctx.optics.offaxis_arcmin(y0, z0))
    e = np.geomspace(0.3, 10.0, 400)
    rate_per_flux = np.trapezoid(probe.photon_spectrum(e) * ctx.optics.area(e)
                                 * ctx.optics.vignetting(e, np.full(e.size, theta)), e)  # fmt: skip
    src = Source("const", ra, dec, 8.0 / rate_per_flux, spec)
    batch, _ = source_photons(src, ctx, np.random.default_rng(17), component=0)
    _, detected = ctx.detector.respond(batch.frame, batch.rawy, batch.rawz, batch.charge, batch.energy, salt=17)
    edges = T0 + np.arange(0.0, duration + 1e-9, 2.0)
    counts, _ = np.histogram(batch.time[detected], edges)
    mu = counts.mean()
    assert 5.0 < mu < 40.0, mu
    assert _poisson_histogram_pvalue(counts, mu, ddof=1) > P_MIN
    assert _dispersion_ok(counts)
