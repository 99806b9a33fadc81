"""pytest-benchmark of each brick on golden data, normalised by the calibration workload.

Run by ``python -m harness run`` / ``python -m harness timing`` (see harness/timing.py)
with ``--benchmark-enable``; not part of the default test paths.  Each benchmark is one
interleaved measurement (:func:`harness.timing.measure_interleaved`): pytest-benchmark
times the whole measurement and its ``extra_info`` carries the normalised figures the
harness compares with the baselines.

Environment (set by the harness):

* ``MXT_HARNESS_GOLDEN``: golden folder (default ``<repo>/golden``);
* ``MXT_HARNESS_TIMING_SETS``: comma-separated golden datasets (default: all present);
* ``MXT_HARNESS_TIMING_ROUNDS`` / ``MXT_HARNESS_TIMING_WARMUP``: rounds (5) and warm-up (1);
* ``MXT_HARNESS_WORK``: scratch folder for the brick outputs;
* ``MXT_HARNESS_EXTRA_PIPELINES``: ``name=module:function`` pairs registered before the
  golden datasets are read (the harness's own tests time a toy pipeline this way).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from harness.config import repo_root
from harness.timing import measure_interleaved


def _register_extra() -> None:
    extra = os.environ.get("MXT_HARNESS_EXTRA_PIPELINES", "")
    if not extra:
        return
    from mxt_pipeline.pipelines import registry, runtime

    for item in extra.split(","):
        name, _, target = item.partition("=")
        registry.PIPELINES[name] = target
        runtime._MODE_OF_PIPELINE.setdefault(name, "XBAND-GP")


def _workloads():
    from harness.replay import brick_workloads

    _register_extra()
    root = Path(os.environ.get("MXT_HARNESS_GOLDEN", repo_root() / "golden"))
    names = [n for n in os.environ.get("MXT_HARNESS_TIMING_SETS", "").split(",") if n]
    if not names and root.is_dir():
        names = sorted(p.name for p in root.iterdir() if (p / "MANIFEST.json").exists())
    work = Path(os.environ.get("MXT_HARNESS_WORK") or tempfile.mkdtemp(prefix="mxt-bench-"))
    out = {}
    for name in names:
        out.update(brick_workloads(root / name, work / name))
    return out


_WORKLOADS = _workloads()


@pytest.mark.parametrize("name", sorted(_WORKLOADS))
def test_brick_time(benchmark, name):
    rounds = int(os.environ.get("MXT_HARNESS_TIMING_ROUNDS", "5"))
    warmup = int(os.environ.get("MXT_HARNESS_TIMING_WARMUP", "1"))
    sample = benchmark.pedantic(measure_interleaved, args=(name, _WORKLOADS[name]),
                                kwargs={"rounds": rounds, "warmup": warmup}, rounds=1, iterations=1)  # fmt: skip
    benchmark.extra_info.update(sample.to_dict())
    assert sample.normalised > 0
