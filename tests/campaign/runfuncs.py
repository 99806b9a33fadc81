"""Run functions used by the campaign-runner tests (imported by dask workers).

``noisy_sources`` draws a small fake comparison from the run seed only, and logs each
execution, so the tests can see which runs were executed and that results depend on
the seed alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def noisy_sources(task):
    rng = np.random.default_rng(task.seed)
    log = Path(task.folder) / "executions.log"
    with open(log, "a") as fh:
        fh.write("run\n")
    if task.options.get("fail_index") == task.index and not (Path(task.folder) / "allow").exists():
        raise RuntimeError("deliberate failure")
    n = int(rng.integers(1, 4))
    sources = []
    for _k in range(n):
        off = float(rng.rayleigh(30.0))
        sources.append(
            {
                "true_ra": float(rng.uniform(0, 360)),
                "true_dec": float(rng.uniform(-60, 60)),
                "true_counts": float(rng.integers(20, 2000)),
                "offaxis_arcmin": float(rng.uniform(0, 25)),
                "in_fov": True,
                "found": bool(rng.random() < 0.9),
                "offset_arcsec": off,
                "err_r90_arcsec": float(30.0 * np.sqrt(2 * np.log(10))),
                "offset_r90": off / float(30.0 * np.sqrt(2 * np.log(10))),
                "counts_ratio": float(rng.normal(1.0, 0.1)),
                "det_ml": float(rng.uniform(10, 100)),
            }
        )
    return {"sources": sources, "n_found": n, "n_false": int(rng.random() < 0.05)}
