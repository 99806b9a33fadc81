"""Reprocessing jobs: outcome of a failing reprocess, the dask backend, live progress."""

from __future__ import annotations

import json
import time

import pytest

from mxt_pipeline.console.jobs import CaldbChoice, JobManager, run_reprocess_job
from mxt_pipeline.errors import MXTInputError
from tests.console.conftest import TOKEN
from tests.console.fakeroot import make_collection


def _wait(job, timeout=60.0):
    t0 = time.monotonic()
    while job.active:
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"job still {job.state} after {timeout} s")
        time.sleep(0.05)
    return job


def test_a_failing_reprocess_is_an_outcome_not_an_exception(tmp_path):
    d = make_collection(tmp_path, obs_id="F1")  # its manifest names a dataset that does not exist
    out = run_reprocess_job(str(d), None)
    assert out["ok"] is False and out["error"].startswith("MXT") and "no-such-dataset" in out["error"], out
    man = json.loads((d / "manifest.json").read_text())
    del man["target"]
    (d / "manifest.json").write_text(json.dumps(man))
    assert "manifest lacks 'target'" in run_reprocess_job(str(d), None)["error"]


def test_jobs_run_on_a_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    root = tmp_path.resolve()
    d = make_collection(root / "o", obs_id="D1")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        jobs = JobManager(root, [CaldbChoice("default", None)], scheduler=cluster.scheduler_address)
        try:
            assert jobs.backend == f"dask scheduler {cluster.scheduler_address}"
            job, started = jobs.launch(f"o/{d.name}", "default")
            assert started
            _wait(job)
        finally:
            jobs.shutdown()
    assert job.state == "FAILED" and "no-such-dataset" in job.result["error"], job.result  # ran in the worker


def test_launch_refuses_bad_requests(tmp_path):
    jobs = JobManager(tmp_path.resolve(), [CaldbChoice("default", None)])
    with pytest.raises(MXTInputError, match="unknown CALDB"):
        jobs.launch("x", "other")
    with pytest.raises(MXTInputError, match="unique"):
        JobManager(tmp_path, [CaldbChoice("a", None), CaldbChoice("a", "/x")])


def test_job_api_shows_the_bricks_of_the_running_run(tmp_path, make_client, monkeypatch):
    from concurrent.futures import Future

    d = make_collection(tmp_path / "o", obs_id="P1")
    c = make_client(tmp_path)
    fut: Future = Future()
    monkeypatch.setattr(c.app.state.config.jobs, "_submit", lambda *a: fut)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    job_id = c.post("/api/reprocess", data={"collection": f"o/{d.name}"}, headers=auth).json()["jobs"][0]["id"]
    (tmp_path / "o" / "processing_status.json").write_text(json.dumps({
        "status": "RUNNING", "collection": None, "obs_id": "P1", "pipeline": "xband-gp",
        "bricks": [{"name": "calibrate", "status": "SUCCESS", "elapsed_s": 3.2}, {"name": "detect", "status": "RUNNING"}]}))  # fmt: skip
    doc = c.get(f"/api/jobs/{job_id}", headers=auth).json()
    assert doc["state"] == "RUNNING" and [b["name"] for b in doc["progress"]] == ["calibrate", "detect"]
    runs = c.get("/api/runs?status=RUNNING", headers=auth).json()["runs"]
    assert [r["obs_id"] for r in runs] == ["P1"]  # the run in progress is a line of the runs table
    fut.set_result({"ok": False, "error": "MXTError: boom"})
    doc = c.get(f"/api/jobs/{job_id}", headers=auth).json()
    assert doc["state"] == "FAILED" and doc["error"] == "MXTError: boom"
