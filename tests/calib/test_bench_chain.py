"""Throughput of reconstruction + calibration + coordinates (FITS I/O excluded).

Reported as a ratio against the plain per-frame reference implementation
(:mod:`.reference`) timed in the same run on a subset of the same data, plus the
absolute rate and the peak memory per hit in ``benchmark.extra_info``.  Run with
``tox -e bench`` (or ``pytest --benchmark-enable``); by default the benchmarked
function runs once and the test only checks correctness and the ratio.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc

import numpy as np
import pytest

from mxt_pipeline.calib import _kernels
from mxt_pipeline.calib.badpix import pixel_status_map
from mxt_pipeline.calib.chain import calibrate_hits
from mxt_pipeline.calib.energy import CTIInverseTable
from mxt_pipeline.datamodel import Attitude

from .linegen import make_line_hits
from .reference import reference_chain

#: Photons of the benchmark data set (about 1 million hits).
N_PHOTONS = 450_000
PHOTONS_PER_FRAME = 6


def make_bench_hits(calset, n_photons=N_PHOTONS, seed=0):
    """Hits of a continuum (log-uniform 0.3-9 keV) over the detector, 6 photons per frame.

    Same physics as the calibration-line tests (:mod:`.linegen`): about 2.2 hits per
    event with the test charge-cloud model.
    """
    rng = np.random.default_rng(seed)
    energy = np.exp(rng.uniform(np.log(0.3), np.log(9.0), n_photons))
    hits, _ = make_line_hits(energy, n_photons, rng, calset, photons_per_frame=PHOTONS_PER_FRAME)
    return hits


def _setup(calset, hits):
    t = hits["TIME"]
    ts = np.arange(t[0] - 1.0, t[-1] + 2.0, 1.0)
    att = Attitude.from_pointing(ts, 120.0 + 0 * ts, -45.0 + (ts - ts[0]) * 1e-5, 33.0 + 0 * ts)
    models = {"teldef": calset.teldef, "gainoff": calset.gainoff, "multiplicity": calset.multiplicity}
    kw = {
        "ra_nom": 120.0, "dec_nom": -45.0,
        "split": calset.pattern.split_threshold, "primary": calset.pattern.primary_threshold,
        "status_map": pixel_status_map(np.zeros((256, 256), bool)),
        "cti_inverse": CTIInverseTable.from_model(calset.cti),
    }  # fmt: skip
    return att, models, kw


def _best_time(fn, repeat=3):
    gc.collect()
    gc.disable()
    try:
        best = np.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
    finally:
        gc.enable()
    return best


_RSS_SCRIPT = textwrap.dedent(
    """
    import resource, sys, numpy as np
    sys.path.insert(0, {root!r})

    def hwm():
        # Peak RSS of this process image (VmHWM; ru_maxrss would include the parent's
        # peak, which Linux carries across fork and exec).
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    from tests.calib.test_bench_chain import _setup
    from tests.calib.standins import StandInCalibrationSet, StandInMultiplicity
    from mxt_pipeline.calib.chain import calibrate_hits
    cs = StandInCalibrationSet()
    cs.multiplicity = StandInMultiplicity([0.1, 20.0], np.ones((4, 2)))
    hits = {{k: np.load({folder!r} + "/" + k + ".npy") for k in ("TIME", "FRAME", "RAWY", "RAWZ", "PHA")}}
    att, models, kw = _setup(cs, hits)
    small = {{k: v[:2000] for k, v in hits.items()}}
    calibrate_hits(small, att, models, **kw)  # compiled kernels loaded, caches warm
    base = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
    before = hwm()
    calibrate_hits(hits, att, models, **kw)
    after = hwm()
    # Valid only if the call raised the process peak (else the figure is a lower bound).
    print(after - base, int(after > before))
    """
)


def _peak_rss_per_hit(hits, tmp_path):
    """Peak resident memory added by one call (output included), per hit, in a fresh process."""
    for k, v in hits.items():
        np.save(tmp_path / f"{k}.npy", v)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT.format(root=root, folder=str(tmp_path))],
                         capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    extra, valid = (int(x) for x in out.stdout.split())
    return extra / hits["TIME"].size, bool(valid)


@pytest.mark.slow
def test_bench_chain_throughput(benchmark, calset, tmp_path):
    hits = make_bench_hits(calset)
    n_hits = hits["TIME"].size
    att, models, kw = _setup(calset, hits)
    calibrate_hits(hits, att, models, **kw)  # compile / warm up

    table, _ = benchmark(calibrate_hits, hits, att, models, **kw)
    assert len(table) > 0.95 * N_PHOTONS  # a few photons merge (same frame) or fall below threshold

    t_chain = _best_time(lambda: calibrate_hits(hits, att, models, **kw))
    # Reference on the first 400 frames (same data, per-frame loop), scaled per hit.
    sub_n = int(np.searchsorted(hits["FRAME"], 400))
    sub = {k: v[:sub_n] for k, v in hits.items()}
    t_ref = _best_time(lambda: reference_chain(sub, att, calset, kw["split"], kw["primary"], 120.0, -45.0), repeat=1)
    per_hit_chain = t_chain / n_hits
    per_hit_ref = t_ref / sub_n
    ratio = per_hit_ref / per_hit_chain

    # The reconstruction step against its vectorised numpy engine (same hits, same run).
    from mxt_pipeline.calib.patterns import reconstruct

    e_hit = np.asarray(hits["PHA"], float) * 0.005  # any positive energies: timing only
    args = (hits["FRAME"], hits["RAWY"], hits["RAWZ"], e_hit, kw["split"], kw["primary"])
    t_rec = _best_time(lambda: reconstruct(*args, engine="auto"))
    t_rec_np = _best_time(lambda: reconstruct(*args, engine="numpy"), repeat=1)
    fast, plain = reconstruct(*args, engine="auto"), reconstruct(*args, engine="numpy")
    assert np.array_equal(fast.pattern, plain.pattern) and np.array_equal(fast.event_of_hit, plain.event_of_hit)

    tracemalloc.start()
    calibrate_hits(hits, att, models, **kw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_per_hit, rss_valid = _peak_rss_per_hit(hits, tmp_path)

    benchmark.extra_info.update(
        {
            "n_hits": int(n_hits),
            "mhits_per_s": round(n_hits / t_chain / 1e6, 2),
            "reference_khits_per_s": round(1e-3 / per_hit_ref, 1),
            "speedup_vs_reference": round(ratio, 1),
            "reconstruction_speedup_vs_numpy_engine": round(t_rec_np / t_rec, 2),
            "numba": _kernels.HAVE_NUMBA,
            "peak_tracemalloc_bytes_per_hit": round(peak / n_hits, 1),
            "peak_rss_bytes_per_hit": round(rss_per_hit, 1),
            "peak_rss_is_exact": rss_valid,
        }
    )
    print(benchmark.extra_info)
    # Generous margin: measured about 200x on the development machine.
    assert ratio > 20.0
