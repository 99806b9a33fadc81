"""``mxt calibrate`` on a simulated dataset."""

from __future__ import annotations

import json

from mxt_pipeline.calib import chain
from mxt_pipeline.cli.main import main
from mxt_pipeline.io import validate_file

from . import dataset as ds


def test_cli_writes_l2_and_report(tmp_path, calset, monkeypatch, capsys):
    ds.write_dataset(tmp_path / "ds", calset)
    # The CALDB query is replaced by the stand-in calibration set (this test is about the
    # command's plumbing; the CALDB path is exercised below when the CALDB exists).
    monkeypatch.setattr(chain, "_load_calset", lambda caldb, date: calset)
    out = tmp_path / "l2.fits"
    rep = tmp_path / "rep.json"
    rc = main(["calibrate", str(tmp_path / "ds"), "--out", str(out), "--report", str(rep)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert validate_file(out) == []
    assert "events" in text and "hot pixel" in text
    report = json.loads(rep.read_text())
    assert report["n_events"] > 5000
    # The report names the passes' files, not where the dataset lies on this machine.
    text_report = rep.read_text()
    assert str(tmp_path) not in text_report and "mxt_l1_raw" in text_report


def test_cli_errors(tmp_path, capsys):
    (tmp_path / "ds").mkdir()
    rc = main(["calibrate", str(tmp_path / "ds"), "--out", str(tmp_path / "x.fits")])
    assert rc == 2
    assert "manifest not found" in capsys.readouterr().err
    assert not (tmp_path / "x.fits").exists()


def test_cli_with_the_bundled_caldb(tmp_path, calset):
    ds.write_dataset(tmp_path / "ds", calset)
    out = tmp_path / "l2.fits"
    assert main(["calibrate", str(tmp_path / "ds"), "--out", str(out)]) == 0
    assert validate_file(out) == []
