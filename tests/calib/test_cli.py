"""``mxt calibrate`` on a simulated dataset."""

from __future__ import annotations

import json

from mxt_pipeline.cli.main import main
from mxt_pipeline.io import validate_file

from . import dataset as ds


def test_cli_writes_l2_and_report(tmp_path, calset, capsys):
    """The calibrate brick run alone, on the bundled CALDB: L2 and report where asked,
    nothing else left beside them."""
    ds.write_dataset(tmp_path / "ds", calset)
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "l2.fits", "rep.json"]


def test_cli_options_are_the_brick_parameters(tmp_path, calset, capsys):
    """``--no-cti-correction`` is the brick's ``cti_correction``; a value out of the
    brick's bounds is refused naming the parameter, before any file is written."""
    ds.write_dataset(tmp_path / "ds", calset)
    out = tmp_path / "l2.fits"
    rc = main(["calibrate", str(tmp_path / "ds"), "--out", str(out), "--no-cti-correction",
               "--hot-pixel-alpha", "2.0"])  # fmt: skip
    assert rc == 2 and "calibrate.hot_pixel_alpha" in capsys.readouterr().err and not out.exists()
    assert main(["calibrate", str(tmp_path / "ds"), "--out", str(out), "--no-cti-correction"]) == 0
    from mxt_pipeline.io import read_header

    assert read_header(out)["OBS_ID"] == "SIM0001"


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
