"""``mxt run``: usage, early failures with a status file, exit codes, --describe."""

from __future__ import annotations

import json

import pytest

from mxt_pipeline.cli.main import main
from mxt_pipeline.pipelines.status import read_status

from .toybricks import TOKEN


def test_describe_lists_bricks_with_caldb(capsys):
    assert main(["run", "--describe", "--pipeline", "xband-cp"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = [b["name"] for b in doc["bricks"]]
    assert names[:3] == ["calibrate", "detect", "burst"]
    assert next(b for b in doc["bricks"] if b["name"] == "burst")["early"] is True
    assert {"TELDEF", "PSF", "CTI"} <= set(doc["caldb"])


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],
        ["run", "somewhere"],  # no --pipeline/--out
        ["run", "ds", "--runtime-data", "rd.json"],
        ["run", "--runtime-data", "rd.json", "--out", "x"],
        ["run", "ds", "--pipeline", "xband-gp", "--out", "o", "--burst-ra", "10"],
        ["run", "ds", "--pipeline", "xband-gp", "--out", "o", "-p", "no_dot=3"],
    ],
)
def test_usage_errors(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2


def test_invalid_runtime_data_writes_bad_input_status(tmp_path, capsys):
    rd = tmp_path / "runtime_data.json"
    rd.write_text(json.dumps({"pipeline": "xband-gp", "token": TOKEN, "output_dir": "out",
                              "target": {"obs_id": "1", "mode": "XBAND-GP"}, "inputs": {}}))  # fmt: skip
    assert main(["run", "--runtime-data", str(rd)]) == 10
    st = read_status(tmp_path / "out")
    assert st.status == "BAD_INPUT" and st.stopped_at == {"phase": "runtime"}
    assert "inputs" in st.reason["message"]
    err = capsys.readouterr().err
    assert "BAD_INPUT" in err and TOKEN not in err
    assert TOKEN not in (tmp_path / "out" / "processing_status.json").read_text()


def test_missing_dataset_is_bad_input(tmp_path):
    assert main(["run", str(tmp_path / "nope"), "--pipeline", "xband-gp", "--out", str(tmp_path / "o")]) == 10
    st = read_status(tmp_path / "o")
    assert st.status == "BAD_INPUT" and st.reason["file"].endswith("nope")
