"""``mxt campaign run --scenario FILE.yaml``: a user's scenario run N times.

The CLI checks are made with the light run function of ``runfuncs``; one run goes
through the real chain (simulate -> XBAND-GP bricks -> compare) to show the user's
sources are what is simulated and matched.
"""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from mxt_pipeline.campaign.execute import simulate_and_process
from mxt_pipeline.campaign.runner import RunTask
from mxt_pipeline.campaign.seeds import run_seed
from mxt_pipeline.cli.main import cli
from mxt_pipeline.errors import MXTFormatError, MXTInputError
from mxt_pipeline.simulate.cases import make_case
from mxt_pipeline.simulate.scenario import scenario_from_dict

RUNNER = "tests.campaign.runfuncs:noisy_sources"

# A 20'-off-axis source of ~200 counts in 600 s: bright enough to be found in any
# realisation, so the real-chain test checks the matching, not the detection efficiency.
SCENARIO = {
    "obs_id": "FAM0001",
    "tstart": 3.0e8,
    "duration": 600.0,
    "pointing": {"ra": 359.9, "dec": 30.0, "roll": 30.0},
    "sources": [{"name": "OFFAXIS", "ra": 0.2, "dec": 30.1, "flux": 5.0e-11,
                 "spectrum": {"model": "powerlaw", "index": 2.0, "nh": 0.05}}],
}  # fmt: skip


def _write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_scenario_campaign_keeps_the_scenario_and_refuses_a_changed_file(tmp_path):
    sc = _write(tmp_path / "family.yaml", SCENARIO)
    out = tmp_path / "camp"
    args = ["campaign", "run", "--scenario", str(sc), "--n", "3", "--out", str(out), "--seed", "4",
            "--workers", "1", "--runner", RUNNER]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "3 of 3 runs OK" in res.output
    spec = json.loads((out / "campaign.json").read_text())
    assert spec["case"] == "scenario"
    assert spec["options"]["scenario"] == SCENARIO
    assert spec["options"]["scenario_file"] == "family.yaml"
    assert len(spec["options"]["scenario_sha256"]) == 64
    results = [json.loads((out / "runs" / f"run_{i:05d}" / "result.json").read_text()) for i in range(3)]
    assert [r["seed"] for r in results] == [run_seed(4, i) for i in range(3)]
    # The file changed: resuming into the same folder would mix two scenarios.
    _write(sc, {**SCENARIO, "duration": 900.0})
    res = CliRunner().invoke(cli, args)
    assert isinstance(res.exception, MXTInputError)
    assert "another campaign" in str(res.exception)


@pytest.mark.parametrize(
    ("content", "expected"),
    [("pointing: {ra: 1, dec: 2}\nduration: 10\n", "tstart"),
     ("tstart: 1\nduration: 10\npointing: {ra: 1, dec: 2}\nsourcez: []\n", "sourcez"),
     ("tstart: [1\n", "not a valid YAML file")],
)  # fmt: skip
def test_invalid_scenario_file_is_refused_before_any_run(tmp_path, content, expected):
    sc = tmp_path / "bad.yaml"
    sc.write_text(content)
    out = tmp_path / "camp"
    res = CliRunner().invoke(cli, ["campaign", "run", "--scenario", str(sc), "--n", "2", "--out", str(out)])
    assert isinstance(res.exception, (MXTInputError, MXTFormatError))
    assert "bad.yaml" in str(res.exception) and expected in str(res.exception)
    assert not out.exists()


@pytest.mark.parametrize("extra", [[], ["--case", "gp", "--scenario", "{sc}"]])
def test_case_and_scenario_are_exclusive(tmp_path, extra):
    sc = _write(tmp_path / "family.yaml", SCENARIO)
    args = ["campaign", "run", "--n", "2", "--out", str(tmp_path / "c")] + [a.format(sc=sc) for a in extra]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2
    assert "either --case or --scenario" in res.output


def test_scenario_case_is_the_file_for_every_seed():
    expected = scenario_from_dict(SCENARIO).to_dict()
    assert make_case("scenario", 1, scenario=SCENARIO).to_dict() == expected
    assert make_case("scenario", 99, scenario=SCENARIO).to_dict() == expected
    with pytest.raises(MXTInputError, match="--scenario"):
        make_case("scenario", 1)


def test_a_scenario_run_goes_through_the_chain_and_matches_the_users_source(tmp_path):
    seed = run_seed(11, 0)
    task = RunTask("scenario", 0, seed, str(tmp_path / "run"), {"scenario": SCENARIO, "write_products": False})
    (tmp_path / "run").mkdir()
    record = simulate_and_process(task)
    truth = json.loads((tmp_path / "run" / "truth.json").read_text())
    assert [s["name"] for s in truth["sources"]] == ["OFFAXIS"]
    (src,) = record["sources"]
    assert src["true_ra"] == pytest.approx(0.2) and src["true_dec"] == pytest.approx(30.1)
    assert 15.0 < src["offaxis_arcmin"] < 25.0
    assert src["found"], record
    # Found across RA 0/360: the offset is an angular separation, well inside the field.
    assert src["offset_arcsec"] < 3.0 * src["err_r90_arcsec"]
    assert record["obs_id"] == "FAM0001"
