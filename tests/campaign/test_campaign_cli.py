"""``mxt campaign run`` and ``mxt campaign report`` with a light run function."""

from __future__ import annotations

import json

from click.testing import CliRunner

from mxt_pipeline.campaign.tables import read_results
from mxt_pipeline.cli.main import cli

RUNNER = "tests.campaign.runfuncs:noisy_sources"


def test_run_then_report(tmp_path, fitsverify):
    out = tmp_path / "camp"
    args = ["campaign", "run", "--case", "gp", "--n", "4", "--out", str(out), "--seed", "3", "--workers", "1",
            "--runner", RUNNER, "--option", "tag=7"]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "4 of 4 runs OK" in res.output
    assert json.loads((out / "campaign.json").read_text())["options"] == {"tag": 7}
    # A second invocation has nothing left to run and does not start a cluster.
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0 and "4 of 4 runs OK" in res.output
    assert all((out / "runs" / f"run_{i:05d}" / "executions.log").read_text().count("run") == 1 for i in range(4))
    res = CliRunner().invoke(cli, ["campaign", "report", str(out)])
    assert res.exit_code == 0, res.output
    assert fitsverify(out / "campaign_results.fits").ok
    sources, runs, meta = read_results(out / "campaign_results.fits")
    assert meta["NRUNS"] == 4 and len(runs) == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_runs"] == 4 and summary["n_found"] == int(sources["FOUND"].sum())
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "requirement" in html
