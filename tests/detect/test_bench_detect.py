"""Benchmark: both detection stages on a 256 x 256 observation, 3 sources, 2 bands.

The candidate is the whole detection of :func:`detect_in_problem` (stage 1, the ML
stage with its add/drop criteria and DET_ML, and the profile-likelihood errors).  The
reference, timed in the same run, is the straightforward approach for the ML fit alone:
a dense model image of every source and band (the same PSF representation multiplied
out over the 256 x 256 pixels), the Cash statistic over all pixels, L-BFGS-B with
finite-difference gradients over all parameters
(:func:`mxt_pipeline.detect.reference.scipy_fit`), started half a pixel and 10% from
the ML solution.  The process is pinned to one CPU while timing (the goal is per core).
Only the ratio is asserted, with a wide margin; the seconds per observation and the
1 s goal are reported in the benchmark's extra info.
"""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np
import pytest

from mxt_pipeline.detect.blas import single_blas_thread
from mxt_pipeline.detect.pipeline import DetectionParameters, detect_in_problem
from mxt_pipeline.detect.reference import model_fractions, scipy_fit

from .bench_setup import bench_problem

TRUE_Y = np.array([3.0, -40.0, 60.0])
TRUE_Z = np.array([-1.5, 30.0, -70.0])


@contextlib.contextmanager
def one_cpu():
    """Pin the process to one CPU and OpenBLAS to one thread (where possible).

    Several BLAS threads pinned to one CPU would spin against each other, so both are
    limited together.
    """
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    saved = os.sched_getaffinity(0)
    with single_blas_thread():
        try:
            os.sched_setaffinity(0, {min(saved)})
            yield
        finally:
            os.sched_setaffinity(0, saved)


def test_bench_detection_three_sources_two_bands(benchmark):
    problem, psf_name = bench_problem(TRUE_Y, TRUE_Z, seed=1)
    params = DetectionParameters()
    with one_cpu():
        result = benchmark.pedantic(detect_in_problem, args=(problem, params), rounds=3, iterations=1, warmup_rounds=0)
        st = result.state
        # Correctness: the three sources, where they were simulated (each within 2
        # statistical R90, about 4.3 sigma: the CALDB spot is some 50 pixels wide).
        assert result.n_sources == 3
        dist = np.hypot(st.y[:, None] - TRUE_Y[None, :], st.z[:, None] - TRUE_Z[None, :])
        nearest = dist.argmin(axis=0)
        assert len(set(nearest)) == 3
        r90 = np.array([result.contours[i].radius90 for i in nearest])
        assert np.all(dist.min(axis=0) < 2.0 * r90)
        if benchmark.disabled:
            # The reference takes 10-30 s on one core (~2000 dense evaluations): it runs
            # only when benchmarking (tox -e bench), to keep the test suite quick.
            return
        # Reference: the dense full-image fit of the same model (the same three sources,
        # started half a pixel away from the ML solution).
        t0 = time.perf_counter()
        ref = scipy_fit(problem, st.y + 0.5, st.z - 0.5, st.counts * 1.1, st.background * 0.9, st.theta,
                        fractions=model_fractions)
        t_ref = time.perf_counter() - t0
    timing = benchmark.stats.stats.median
    benchmark.extra_info.update(
        {
            "psf": psf_name,
            "seconds_per_observation": timing,
            "reference_dense_ml_fit_seconds": t_ref,
            "speedup_vs_dense_fit": t_ref / timing,
            "goal_seconds_per_observation": 1.0,
            "goal_met": bool(timing < 1.0),
            "reference_calls": int(ref.n_calls),
            "model_evaluations": int(problem.model.n_evaluations),
        }
    )
    # The reference reaches the same optimum (same model, same data, same sources).
    assert ref.cstat >= st.cstat - 0.05
    # Speed: the full detection with its errors beats the dense fit of the ML stage alone.
    assert t_ref / timing > 3.0


def _counts_problem(total: float, seed: int = 1):
    from mxt_pipeline.acceptance.detection import simulate_problem

    from .bench_setup import bench_setup

    setup = bench_setup()
    shares = np.array([300.0, 200.0, 150.0]) / 650.0
    counts = (total * shares)[:, None] * setup.band_fractions[None, :]
    return simulate_problem(setup, TRUE_Y, TRUE_Z, counts, np.random.default_rng(seed))


def _cpu_detect(problem, params):
    t0 = time.process_time()
    result = detect_in_problem(problem, params)
    return time.process_time() - t0, result


#: CPU-time goals of the bright cases (seconds per observation, issue goals).
BRIGHT_GOALS = {1e5: 2.0, 1e6: 5.0}
#: Ratio ceilings against the faint benchmark problem timed in the same run.  The cost
#: grew with the events before (12.6x at 1e5 and 74x at 1e6 counts); binned in pixels
#: it follows the pixels with counts (measured 4-6x and 8-10x).
BRIGHT_RATIO_CEILING = {1e5: 8.0, 1e6: 15.0}


@pytest.mark.parametrize("total", [1e5, 1e6], ids=["1e5", "1e6"])
def test_bench_detection_bright_three_sources(benchmark, total):
    """A bright field costs a bounded multiple of the faint benchmark field (CPU time).

    Reference: the benchmark problem (650 counts, the same three positions), detected in
    the same run; both after a warm-up detection (compiled kernels, PSF tables).
    """
    if benchmark.disabled:
        # 10-20 CPU-s: only when benchmarking (tox -e bench).  The agreement of these
        # fits with the dense reference is tests/detect/test_fast_vs_dense.py.
        pytest.skip("benchmark only (tox -e bench)")
    params = DetectionParameters()
    faint = _counts_problem(650.0)
    bright = _counts_problem(total)
    with single_blas_thread():
        detect_in_problem(faint, params)  # warm-up
        result = benchmark.pedantic(detect_in_problem, args=(bright, params), rounds=1, iterations=1)
        st = result.state
        assert result.n_sources == 3
        dist = np.hypot(st.y[:, None] - TRUE_Y[None, :], st.z[:, None] - TRUE_Z[None, :]).min(axis=0)
        r90 = np.array([c.radius90 for c in result.contours])
        assert np.all(dist < 3.0 * r90.max())
        t_bright, _ = _cpu_detect(bright, params)
        t_faint, _ = _cpu_detect(faint, params)
    ratio = t_bright / t_faint
    benchmark.extra_info.update({
        "source_counts": total, "cpu_seconds": t_bright, "faint_reference_cpu_seconds": t_faint,
        "ratio_to_faint": ratio, "goal_cpu_seconds": BRIGHT_GOALS[total],
        "goal_met": bool(t_bright <= BRIGHT_GOALS[total]),
    })  # fmt: skip
    assert ratio < BRIGHT_RATIO_CEILING[total]
