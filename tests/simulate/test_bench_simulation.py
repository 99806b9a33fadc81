"""Throughput of PSF sampling + detector response, against per-photon references.

The vectorised path (``Optics.scatter`` - the CALDB ``PSFModel.sample`` - then
``DetectorModel.respond``: charge clouds, frame accumulation and pile-up, read noise,
CTI, gain/offset, threshold) is timed on ``N`` photons; the references
(:mod:`.reference`: grid-CDF PSF sampling and a per-photon detector loop) on subsets of
the same photons, in the same run.  The ratio of the per-photon times is asserted with
a generous margin; photons per second are reported in ``benchmark.extra_info``.
``tox -e bench`` times 1e6 photons; by default the benchmarked function runs once on
2e5 photons and the test checks correctness (the vectorised hits equal the reference's
hit for hit) and the ratio.
"""

from __future__ import annotations

import gc
import time

import numpy as np
import pytest

from mxt_pipeline.simulate.detector import DetectorModel
from mxt_pipeline.simulate.optics import Optics, on_chip

from .reference import reference_psf_sample, reference_respond


def _photons(n: int, seed: int = 0):
    """Photons of a 0.3-10 keV power law (index 2), off-axis 0-20', 5 per frame."""
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    energy = 1.0 / (1.0 / 0.3 - u * (1.0 / 0.3 - 1.0 / 10.0))  # inverse CDF of E^-2
    theta = 20.0 * np.sqrt(rng.random(n))
    y0 = rng.uniform(20.0, 236.0, n)
    z0 = rng.uniform(20.0, 236.0, n)
    frame = np.arange(n) // 5
    return energy, theta, y0, z0, frame, rng


def _vectorised(optics, det, energy, theta, y0, z0, frame, rng, salt=7):
    dy, dz = optics.scatter(energy, theta, rng)
    y, z = y0 + dy, z0 + dz
    on = on_chip(y, z)
    q = det.charge_of(energy[on], rng)
    return det.respond(frame[on], y[on], z[on], q, energy[on], salt=salt)


def _best(fn, repeat):
    gc.collect()
    gc.disable()
    try:
        best = np.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best
    finally:
        gc.enable()


def test_detector_matches_per_photon_reference(calset):
    """Same photons, same offsets: the vectorised response equals the loop, hit for hit."""
    optics = Optics(calset.psf, calset.effarea, calset.vignet, calset.teldef)
    det = DetectorModel.from_calibration(calset)
    energy, theta, y0, z0, frame, rng = _photons(3000, seed=1)
    frame = np.arange(energy.size) // 50  # dense frames: pile-up and shared pixels
    dy, dz = optics.scatter(energy, theta, rng)
    y, z = y0 + dy, z0 + dz
    on = on_chip(y, z)
    q = det.charge_of(energy[on], rng)
    hits, _ = det.respond(frame[on], y[on], z[on], q, energy[on], salt=3)
    got = list(zip(hits["FRAME"].tolist(), hits["RAWY"].tolist(), hits["RAWZ"].tolist(), hits["PHA"].tolist()))
    ref = reference_respond(det, frame[on], y[on], z[on], q, energy[on], salt=3)
    assert got == ref


def test_grid_cdf_reference_agrees_with_the_caldb_sampler(calset):
    """The CALDB sampler and the grid-CDF reference draw the same distribution
    (two-sample KS on the radial and axial offsets within the grid; false failure 1e-3 each)."""
    from scipy import stats

    optics = Optics(calset.psf, calset.effarea, calset.vignet, calset.teldef)
    rng = np.random.default_rng(4)
    n = 800
    e, t = np.full(n, 1.5), np.full(n, 5.0)
    ry, rz = reference_psf_sample(calset.psf, e, t, rng)
    vy, vz = optics.scatter(np.full(20 * n, 1.5), np.full(20 * n, 5.0), rng)
    inside = (np.abs(vy) < 48) & (np.abs(vz) < 48)
    for a, b in ((ry, vy[inside]), (rz, vz[inside]), (np.hypot(ry, rz), np.hypot(vy, vz)[inside])):
        assert stats.ks_2samp(a, b).pvalue > 1e-3


@pytest.mark.slow
def test_bench_psf_and_detector_throughput(benchmark, calset):
    optics = Optics(calset.psf, calset.effarea, calset.vignet, calset.teldef)
    det = DetectorModel.from_calibration(calset)
    enabled = not getattr(benchmark, "disabled", False)
    n = 1_000_000 if enabled else 200_000
    energy, theta, y0, z0, frame, _ = _photons(n)
    _vectorised(optics, det, energy[:1000], theta[:1000], y0[:1000], z0[:1000], frame[:1000],
                np.random.default_rng(0))  # warm-up  # fmt: skip

    hits, _ = benchmark(lambda: _vectorised(optics, det, energy, theta, y0, z0, frame, np.random.default_rng(1)))
    assert hits["PHA"].size > n  # about 2-3 hits per photon
    repeat = 3 if enabled else 1
    t_vec = _best(lambda: _vectorised(optics, det, energy, theta, y0, z0, frame, np.random.default_rng(1)), repeat)
    # The two stages alone, for the per-stage ratios.
    rng = np.random.default_rng(1)
    t_psf = _best(lambda: optics.scatter(energy, theta, rng), repeat) / n
    dy, dz = optics.scatter(energy, theta, rng)
    y, z = y0 + dy, z0 + dz
    on = on_chip(y, z)
    q = det.charge_of(energy[on], rng)
    t_det = _best(lambda: det.respond(frame[on], y[on], z[on], q, energy[on], salt=1), repeat) / n

    # References on subsets of the same photons.
    n_psf, n_det = 200, 4000
    t_psf_ref = _best(lambda: reference_psf_sample(calset.psf, energy[:n_psf], theta[:n_psf], rng), 1) / n_psf
    sub = slice(0, n_det)
    on_s = on[sub]
    t_det_ref = _best(lambda: reference_respond(det, frame[sub][on_s], y[sub][on_s], z[sub][on_s],
                                                q[: int(on_s.sum())], energy[sub][on_s], salt=1), 1) / n_det  # fmt: skip
    per_photon_vec = t_vec / n
    ratio = (t_psf_ref + t_det_ref) / per_photon_vec
    benchmark.extra_info.update(
        {
            "n_photons": n,
            "photons_per_s": round(n / t_vec),
            "psf_photons_per_s": round(1.0 / t_psf),
            "detector_photons_per_s": round(1.0 / t_det),
            "reference_psf_grid_cdf_photons_per_s": round(1.0 / t_psf_ref),
            "reference_detector_loop_photons_per_s": round(1.0 / t_det_ref),
            "speedup_psf_vs_grid_cdf": round(t_psf_ref / t_psf, 1),
            "speedup_detector_vs_loop": round(t_det_ref / t_det, 1),
            "speedup_vs_reference": round(ratio, 1),
        }
    )
    print(benchmark.extra_info)
    # Generous margins (docs/simulation.md has the measured figures).
    assert t_det_ref / t_det > 20.0
    assert t_psf_ref / t_psf > 50.0
