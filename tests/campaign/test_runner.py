"""The campaign runner: resumable, deterministic whatever the number of workers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mxt_pipeline.campaign.runner import (
    CampaignSpec,
    load_results,
    pending_runs,
    run_campaign,
    run_dir,
)
from mxt_pipeline.campaign.seeds import run_seed
from mxt_pipeline.campaign.tables import read_results, records_to_tables, write_results
from mxt_pipeline.errors import MXTInputError

RUNNER = "tests.campaign.runfuncs:noisy_sources"


def _executions(out, i):
    log = run_dir(out, i) / "executions.log"
    return log.read_text().count("run") if log.exists() else 0


def test_seeds_depend_on_campaign_seed_and_index_only():
    seeds = [run_seed(7, i) for i in range(100)]
    assert len(set(seeds)) == 100
    assert seeds == [run_seed(7, i) for i in range(100)]
    assert run_seed(8, 0) != run_seed(7, 0)
    with pytest.raises(ValueError):
        run_seed(7, -1)


@pytest.fixture(scope="module")
def two_worker_campaign(tmp_path_factory):
    out = tmp_path_factory.mktemp("camp2")
    spec = CampaignSpec(case="toy", n=8, seed=11, runner=RUNNER, options={"fail_index": 5})
    records = run_campaign(out, spec, n_workers=2, progress=False)
    return out, spec, records


def test_runs_complete_and_failures_are_recorded(two_worker_campaign):
    out, spec, records = two_worker_campaign
    assert [r["index"] for r in records] == list(range(8))
    assert records[5]["status"] == "FAILED" and "deliberate failure" in records[5]["error"]
    assert all(r["status"] == "OK" for i, r in enumerate(records) if i != 5)
    assert all(r["seed"] == run_seed(11, r["index"]) for r in records)


def test_resume_reruns_only_missing_and_failed(two_worker_campaign):
    out, spec, _ = two_worker_campaign
    (run_dir(out, 2) / "result.json").unlink()  # as if killed before run 2 finished
    (run_dir(out, 5) / "allow").write_text("")
    assert pending_runs(out, spec.n) == [2, 5]
    before = [_executions(out, i) for i in range(spec.n)]
    records = run_campaign(out, spec, n_workers=2, progress=False)
    after = [_executions(out, i) for i in range(spec.n)]
    assert [a - b for a, b in zip(after, before)] == [1 if i in (2, 5) else 0 for i in range(spec.n)]
    assert all(r["status"] == "OK" for r in records)
    assert pending_runs(out, spec.n) == []


def test_one_and_two_workers_give_identical_tables(two_worker_campaign, tmp_path):
    out2, spec, _ = two_worker_campaign
    (tmp_path / "c1").mkdir()
    for i in [5]:
        d = run_dir(tmp_path / "c1", i)
        d.mkdir(parents=True)
        (d / "allow").write_text("")
    run_campaign(tmp_path / "c1", spec, n_workers=1, progress=False)
    t1 = write_results(tmp_path / "r1.fits", load_results(tmp_path / "c1"), spec.case, spec.seed)
    t2 = write_results(tmp_path / "r2.fits", load_results(out2), spec.case, spec.seed)
    s1, r1, m1 = read_results(t1)
    s2, r2, m2 = read_results(t2)
    assert m1 == m2
    for a, b in ((s1, s2), (r1, r2)):
        assert a.colnames == b.colnames
        for name in a.colnames:
            x, y = np.asarray(a[name]), np.asarray(b[name])
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name


def test_other_campaign_in_same_folder_is_refused(two_worker_campaign):
    out, spec, _ = two_worker_campaign
    with pytest.raises(MXTInputError, match="another campaign"):
        run_campaign(out, CampaignSpec(case="toy", n=9, seed=11, runner=RUNNER), n_workers=1, progress=False)


def test_records_to_tables_counts():
    recs = [
        {"index": 1, "seed": 3, "status": "OK", "result": {"sources": [{"in_fov": True, "found": False}], "n_false": 2}},
        {"index": 0, "seed": 4, "status": "FAILED", "result": {}},
    ]
    sources, runs = records_to_tables(recs)
    assert list(runs["RUN"]) == [0, 1]
    assert list(runs["N_FALSE"]) == [0, 2]
    assert list(runs["N_TRUE"]) == [0, 1]
    assert len(sources) == 1 and not sources["FOUND"][0]
    assert json.dumps({"ok": True})
