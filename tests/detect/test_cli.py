"""``mxt detect L2.fits --out SRCLIST.fits``: files in, valid products out."""

from __future__ import annotations

import numpy as np
import pytest

from mxt_pipeline.cli.main import main
from mxt_pipeline.detect import bandpsf
from mxt_pipeline.io import read_product, validate_file
from mxt_pipeline.io.products import write_attitude, write_events

from .test_pipeline import _observation


@pytest.fixture
def observation(tmp_path, monkeypatch):
    """An L2 file and an attitude file; the CALDB replaced by the test doubles."""
    rng = np.random.default_rng(1)
    ev, cal, att, truth = _observation(rng, [(20.0, -30.0, 400), (-50.0, 60.0, 150)])
    l2 = write_events(tmp_path / "l2.fits", ev)
    att.meta["OBS_ID"] = "TEST"
    att_path = write_attitude(tmp_path / "att.fits", att)
    monkeypatch.setattr(bandpsf.DetectionCalibration, "from_caldb", classmethod(lambda cls, caldb=None, date=None: cal))
    return l2, att_path, truth, tmp_path


def test_detect_writes_a_valid_source_list_and_regions(observation, fitsverify, capsys):
    l2, att, truth, tmp = observation
    out = tmp / "src.fits"
    assert main(["detect", str(l2), "--out", str(out), "--att", str(att)]) == 0
    assert "2 source(s)" in capsys.readouterr().out
    assert validate_file(out) == []
    assert fitsverify(out).ok
    prod = read_product(out, "MXT_SOP_SKY")
    src = prod.table("SRCLIST")
    assert len(src) == 2
    assert prod.header("SRCLIST")["NBANDS"] == 2
    reg = (tmp / "src.reg").read_text()
    assert reg.count("circle(") == 2


def test_bands_and_threshold_options(observation):
    l2, _, _, tmp = observation
    out = tmp / "one_band.fits"
    assert main(["detect", str(l2), "--out", str(out), "--bands", "0.3-10", "--threshold", "1e6"]) == 0
    prod = read_product(out, "MXT_SOP_SKY")
    assert len(prod.table("SRCLIST")) == 0  # nothing reaches DET_ML 1e6: a valid empty list
    assert prod.header("SRCLIST")["MLTHRESH"] == 1e6
    assert len(prod.table("BANDS")) == 1


def test_bad_bands_are_a_usage_error(observation):
    l2, _, _, tmp = observation
    assert main(["detect", str(l2), "--out", str(tmp / "x.fits"), "--bands", "2-1"]) == 2


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    assert main(["detect", str(tmp_path / "nope.fits"), "--out", str(tmp_path / "x.fits")]) == 2
    assert "nope.fits" in capsys.readouterr().err
