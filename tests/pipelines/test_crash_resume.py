"""A run killed half way: no half-written product, a status saying where, a rerun that resumes.

The toy pipeline runs in a child process which is killed with SIGKILL (no chance to
clean up) or stopped with SIGTERM; the rerun, in this process, must give exactly the
products of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mxt_pipeline.datapaths import REPO_ROOT
from mxt_pipeline.pipelines.collection import verify_collection
from mxt_pipeline.pipelines.execute import execute
from mxt_pipeline.pipelines.status import ProcessingStatus, read_status

from .toybricks import build_toy, make_caldb, make_observation, make_request, observation_from

S = ProcessingStatus
PRODUCTS = ("samples_00000042.npy", "histogram_00000042.json", "density_00000042.json", "summary_00000042.txt")


def _child(args, env_extra=None, wait=True):
    env = {**os.environ, **(env_extra or {})}
    cmd = [sys.executable, "-m", "tests.pipelines.run_toy", *map(str, args)]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if wait:
        proc.wait(timeout=120)
    return proc


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def setup(tmp_path):
    obs_dir = tmp_path / "obs"
    make_observation(obs_dir, n_passes=3, seed=3)
    caldb = make_caldb(tmp_path / "caldb", factor=1.1)
    reference = execute(make_request(observation_from(obs_dir), tmp_path / "ref", caldb), pipeline=build_toy())
    assert reference.exit_code == 0
    return obs_dir, caldb, {f: _sha(reference.collection / f) for f in PRODUCTS}


def _rerun_and_compare(obs_dir, out, caldb, expected):
    outcome = execute(make_request(observation_from(obs_dir), out, caldb), pipeline=build_toy())
    assert outcome.exit_code == 0 and read_status(out).status is S.SUCCESS
    assert {f: _sha(outcome.collection / f) for f in PRODUCTS} == expected
    assert verify_collection(outcome.collection) == []
    assert not [p for p in outcome.collection.rglob("*") if p.name.endswith(".tmp")]
    return outcome


def test_sigkill_in_a_brick_then_resume(tmp_path, setup):
    obs_dir, caldb, expected = setup
    out = tmp_path / "out"
    proc = _child([obs_dir, out, tmp_path / "caldb"], {"TOY_KILL_IN": "density"})
    assert proc.returncode == -signal.SIGKILL
    st = read_status(out)
    assert st.status is S.RUNNING and st.stopped_at == {"brick": "density", "index": 2, "phase": "running"}
    assert [b["name"] for b in st.bricks] == ["merge", "histogram"]
    assert not [p for p in out.iterdir() if p.name.startswith("toy_")]  # nothing published
    journal = json.loads(next((out / ".staging").glob("*/journal.json")).read_text())
    assert [b["name"] for b in journal["bricks"]] == ["merge", "histogram"]
    outcome = _rerun_and_compare(obs_dir, out, caldb, expected)
    rep = json.loads((outcome.collection / "run_report.json").read_text())
    assert [b["resumed"] for b in rep["bricks"]] == [True, True, False, False]


def test_sigkill_while_writing_leaves_no_half_written_product(tmp_path, setup):
    obs_dir, caldb, expected = setup
    out = tmp_path / "out"
    proc = _child([obs_dir, out, tmp_path / "caldb", "--kill-while-writing"])
    assert proc.returncode == -signal.SIGKILL
    staging = next((out / ".staging").iterdir())
    assert list(staging.glob(".density_00000042.json.partial.tmp"))  # the half-written file is there...
    assert not (staging / "density_00000042.json").exists()
    assert read_status(out).stopped_at["brick"] == "density"
    _rerun_and_compare(obs_dir, out, caldb, expected)  # ...and is gone from what gets published


def test_sigterm_gives_interrupted_then_resume(tmp_path, setup):
    obs_dir, caldb, expected = setup
    out = tmp_path / "out"
    ready = tmp_path / "ready"
    proc = _child([obs_dir, out, tmp_path / "caldb"], {"TOY_KILL_IN": "density-sleep", "TOY_READY_FILE": str(ready)},
                  wait=False)  # fmt: skip
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 80
    st = read_status(out)
    assert st.status is S.INTERRUPTED and st.stopped_at["brick"] == "density"
    assert st.stopped_at["phase"] == "interrupted" and st.reason["type"] == "Interrupted"
    _rerun_and_compare(obs_dir, out, caldb, expected)
