"""Benchmark: reading back an event list this process wrote skips the schema checks.

The reference, timed in the same run (CPU time, interleaved), reads a byte-identical copy of the same file
(a file this process did not write: the value checks run, as for any input from
outside).  The ratio is asserted; the milliseconds of both are in the extra info.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from mxt_pipeline.io.products import read_events, write_events


def test_bench_read_back_own_product(benchmark, tmp_path):
    # The largest golden event list (the calibration-lines set, some 10^4 events).
    golden = Path(__file__).parents[2] / "golden"
    src = max(golden.glob("*/expected/calibrate/mxt_l2_evt_*.fits"), key=lambda p: p.stat().st_size)
    events = read_events(src)
    own = write_events(tmp_path / "own.fits", events)
    foreign = tmp_path / "foreign.fits"
    shutil.copy(own, foreign)
    back = benchmark.pedantic(read_events, args=(own,), rounds=5, iterations=1, warmup_rounds=1)
    ref = read_events(foreign)
    assert len(back) == len(events) and np.array_equal(np.asarray(ref["TIME"]), np.asarray(back["TIME"]))
    if benchmark.disabled:
        return
    # CPU times, interleaved (the load of a shared machine hits both alike).
    cpu = {own: [], foreign: []}
    for _ in range(10):
        for path in (own, foreign):
            t0 = time.process_time()
            read_events(path)
            cpu[path].append(time.process_time() - t0)
    t, t_ref = float(np.median(cpu[own])), float(np.median(cpu[foreign]))
    benchmark.extra_info.update({"events": len(events), "read_own_ms": 1e3 * t, "read_foreign_ms": 1e3 * t_ref,
                                 "ratio": t_ref / t})
    assert t_ref / t > 1.3
