"""``mxt simulate`` as a newcomer meets it: no real data, a typo, a reused folder.

The README's ``mxt simulate grb --template GRB_061121`` must work on a clean clone
without the Swift-XRT data (analytic light curve, with a notice); an unknown template
must name the known ones; a second simulation into the same folder must not leave the
old pass files beside the new ones.
"""

from __future__ import annotations

import json
import logging

import pytest

from mxt_pipeline import datapaths
from mxt_pipeline.cli.main import main
from tests.simulate.swift_format import write_swift_folder


@pytest.fixture
def no_swift_data(monkeypatch):
    """No Swift-XRT data anywhere: no option, no variable, no ``../shared`` folder."""
    monkeypatch.delenv("MXT_SWIFT_XRT_DATA", raising=False)
    monkeypatch.setattr(datapaths, "_SWIFT_SUBDIR", "absent-swift-xrt-folder")
    assert datapaths.swift_xrt_dir() is None


def _grb(out, *extra):
    return main(["simulate", "grb", "--seed", "1", "--duration", "1500", "--out", str(out), "--no-progress", *extra])


def test_named_template_without_data_falls_back_to_analytic(no_swift_data, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    assert _grb(tmp_path / "d", "--template", "GRB_061121") == 0
    truth = json.loads((tmp_path / "d" / "truth.json").read_text())
    assert truth["sources"][0]["name"] == "GRB (analytic)"
    notice = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("GRB_061121" in m and "analytic" in m for m in notice), notice


def test_unknown_template_lists_close_and_known_names(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MXT_SWIFT_XRT_DATA", raising=False)
    data = write_swift_folder(tmp_path / "swift", {"GRB_061121": 1.0, "GRB_050124": 1.0})
    rc = _grb(tmp_path / "d", "--template", "GRB_06112", "--data-dir", str(data))
    err = capsys.readouterr().err
    assert rc == 2
    assert "GRB_06112" in err and "close names: GRB_061121" in err and "2 known" in err
    assert "Traceback" not in err and not (tmp_path / "d").exists()


def test_templates_lists_the_data(tmp_path, capsys, monkeypatch):
    data = write_swift_folder(tmp_path / "swift", {"GRB_061121": 1.0, "GRB_050124": 1.0})
    assert main(["simulate", "templates", "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out.split() == ["GRB_050124", "GRB_061121"]


def test_second_simulation_into_a_dataset_is_refused_then_replaces_with_overwrite(no_swift_data, tmp_path, capsys):
    out = tmp_path / "d"
    assert _grb(out, "--template", "analytic") == 0
    first = sorted(p.relative_to(out) for p in out.rglob("*.fits"))
    capsys.readouterr()
    assert _grb(out, "--template", "analytic", "--seed", "2") == 2
    err = capsys.readouterr().err
    assert "already holds a dataset" in err and "--overwrite" in err
    (out / "notes.txt").write_text("kept")
    # Another observation (its own OBS_ID, so its own file names) replaces the first.
    assert main(["simulate", "gp", "--sources", "1", "--duration", "1500", "--seed", "3", "--out", str(out),
                 "--no-progress", "--overwrite"]) == 0  # fmt: skip
    second = sorted(p.relative_to(out) for p in out.rglob("*.fits"))
    manifest = json.loads((out / "dataset.json").read_text())
    listed = sorted([manifest["files"]["att"], manifest["files"]["ang"], *manifest["files"]["l1"],
                     *manifest["files"]["saa"]])  # fmt: skip
    assert [str(p) for p in second] == listed
    # The first observation's own pass files are gone, not left beside the new ones.
    assert [p for p in first if "SIM00000001" in str(p)] and not any("SIM00000001" in str(p) for p in second)
    assert (out / "notes.txt").read_text() == "kept"
