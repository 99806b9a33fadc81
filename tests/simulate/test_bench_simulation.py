"""Throughput of PSF sampling + detector response, against references timed in the same run.

The vectorised path (``Optics.scatter`` - the CALDB ``PSFModel.sample`` - then
``DetectorModel.respond``: charge clouds, frame accumulation and pile-up, read noise,
CTI, gain/offset, threshold) is timed on ``N`` photons in process CPU time (photons per
second per core); the detector against its plain numpy reference on the same photons
(hit-for-hit equal), both stages against per-photon loops (:mod:`.reference`) on
subsets.  Ratios are asserted with margins; ``tox -e bench`` (1e6 photons) also
reports the rate against the issue's target of 1e6 photons per CPU second.  By default the benchmarked
function runs once on 1e5 photons.
"""

from __future__ import annotations

import gc
import time

import numpy as np
import pytest

from mxt_pipeline.simulate.detector import DetectorModel
from mxt_pipeline.simulate.optics import Optics, on_chip

from .reference import numpy_reference_respond, reference_psf_sample, reference_respond


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


def _cpu(fn) -> float:
    """Process CPU time of one call (s), garbage collector off."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.process_time()
        fn()
        return time.process_time() - t0
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


#: The issue's speed target: photons per second per core through PSF sampling and
#: detector response (reported in the benchmark's ``extra_info``; the asserts are ratios).
TARGET_PHOTONS_PER_CPU_S = 1.0e6


@pytest.mark.slow
def test_bench_psf_and_detector_throughput(benchmark, calset):
    """PSF sampling + detector response: photons per CPU second (one core), and ratios
    against the numpy reference of the detector and the per-photon loops, same run.

    Times are process CPU times (``time.process_time``: one core's work, insensitive to
    other processes sharing the machine), best of interleaved repeats with the garbage
    collector off.
    """
    optics = Optics(calset.psf, calset.effarea, calset.vignet, calset.teldef)
    det = DetectorModel.from_calibration(calset)
    enabled = not getattr(benchmark, "disabled", False)
    n = 1_000_000 if enabled else 100_000
    energy, theta, y0, z0, frame, _ = _photons(n)
    _vectorised(optics, det, energy[:1000], theta[:1000], y0[:1000], z0[:1000], frame[:1000],
                np.random.default_rng(0))  # warm-up  # fmt: skip

    hits, _ = benchmark(lambda: _vectorised(optics, det, energy, theta, y0, z0, frame, np.random.default_rng(1)))
    assert hits["PHA"].size > n  # about 2-3 hits per photon
    rng = np.random.default_rng(1)
    dy, dz = optics.scatter(energy, theta, rng)
    y, z = y0 + dy, z0 + dz
    on = on_chip(y, z)
    q = det.charge_of(energy[on], rng)
    args = (frame[on], y[on], z[on], q, energy[on])

    # Correctness on the benchmark's photons: the kernel equals the numpy reference hit for hit.
    mine, _ = det.respond(*args, salt=1)
    got = list(zip(mine["FRAME"].tolist(), mine["RAWY"].tolist(), mine["RAWZ"].tolist(), mine["PHA"].tolist()))
    assert got == numpy_reference_respond(det, *args, salt=1)

    repeat = 3 if enabled else 1
    t_vec, t_psf, t_det, t_det_np = (np.inf,) * 4
    for _ in range(repeat):  # interleaved: candidate and references see the same machine state
        t_vec = min(t_vec, _cpu(lambda: _vectorised(optics, det, energy, theta, y0, z0, frame,
                                                    np.random.default_rng(1))))  # fmt: skip
        t_psf = min(t_psf, _cpu(lambda: optics.scatter(energy, theta, rng)))
        t_det = min(t_det, _cpu(lambda: det.respond(*args, salt=1)))
        t_det_np = min(t_det_np, _cpu(lambda: numpy_reference_respond(det, *args, salt=1)))

    # Per-photon loops on subsets of the same photons.
    n_psf, n_loop = 200, 4000
    t_psf_ref = _cpu(lambda: reference_psf_sample(calset.psf, energy[:n_psf], theta[:n_psf], rng)) / n_psf
    sub = slice(0, n_loop)
    on_s = on[sub]
    t_det_ref = _cpu(lambda: reference_respond(det, frame[sub][on_s], y[sub][on_s], z[sub][on_s],
                                               q[: int(on_s.sum())], energy[sub][on_s], salt=1)) / n_loop  # fmt: skip
    rate = n / t_vec
    benchmark.extra_info.update(
        {
            "n_photons": n,
            "photons_per_cpu_s": round(rate),
            "target_photons_per_cpu_s": TARGET_PHOTONS_PER_CPU_S,
            # Reported, not asserted: an absolute rate depends on the machine.
            "target_met": bool(rate >= TARGET_PHOTONS_PER_CPU_S),
            "psf_photons_per_cpu_s": round(n / t_psf),
            "detector_photons_per_cpu_s": round(n / t_det),
            "numpy_reference_detector_photons_per_cpu_s": round(n / t_det_np),
            "speedup_detector_vs_numpy_reference": round(t_det_np / t_det, 2),
            "speedup_detector_vs_loop": round(t_det_ref * n / t_det, 1),
            "speedup_psf_vs_grid_cdf_loop": round(t_psf_ref * n / t_psf, 1),
        }
    )
    print(benchmark.extra_info)
    # Ratios measured in this run (margins below the measured figures of docs/simulation.md).
    assert t_det_np / t_det > 1.2
    assert t_det_ref * n / t_det > 20.0
    assert t_psf_ref * n / t_psf > 50.0

