"""``mxt detect L2.fits --out SRCLIST.fits``: files in, valid products out."""

from __future__ import annotations

import numpy as np
import pytest

from mxt_pipeline.cli.main import main
from mxt_pipeline.detect import bandpsf
from mxt_pipeline.io import read_product, validate_file
from mxt_pipeline.io.products import write_attitude, write_events
from mxt_pipeline.pipelines import standalone

from .test_pipeline import _observation


@pytest.fixture
def observation(tmp_path, monkeypatch):
    """An L2 file and an attitude file; the CALDB's detection models replaced by the test
    doubles (the brick still resolves and loads its CALDB files)."""
    rng = np.random.default_rng(1)
    ev, cal, att, truth = _observation(rng, [(20.0, -30.0, 400), (-50.0, 60.0, 150)])
    l2 = write_events(tmp_path / "l2.fits", ev)
    att.meta["OBS_ID"] = "TEST"
    att_path = write_attitude(tmp_path / "att.fits", att)
    monkeypatch.setattr(bandpsf.DetectionCalibration, "from_calset", classmethod(lambda cls, calset: cal))
    # The test events are dated 2017, before the bundled CALDB's first epoch: select its
    # files as of now (the date rule itself is tested with the CALDB).
    monkeypatch.setattr(standalone, "date_of_inputs", lambda inputs: None)
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
    # Counts and rates per band in SRCBANDS; SRCLIST holds their sums.
    per = prod.table("SRCBANDS")
    assert list(per["SRC_ID"]) == [1, 1, 2, 2] and list(per["BAND_ID"]) == [1, 2, 1, 2]
    counts = np.asarray(per["COUNTS"]).reshape(2, 2)
    assert np.all(counts > 0)
    assert np.allclose(counts.sum(axis=1), src["COUNTS"], rtol=1e-5)
    assert np.allclose(np.asarray(per["RATE"]).reshape(2, 2).sum(axis=1), src["RATE"], rtol=1e-5)
    # The brighter source (400 counts simulated) first, about its counts over both bands.
    assert src["COUNTS"][0] == pytest.approx(400, rel=0.25)
    assert np.all(np.asarray(per["COUNTS_ERR"]) > 0)
    # RAWY/RAWZ of the fitted positions: the simulated DET (20, -30) through the TELDEF.
    assert np.hypot(src["RAWY"][0] - (127.5 + 20.0), src["RAWZ"][0] - (127.5 - 30.0)) < 2.0
    reg = (tmp / "src.reg").read_text()
    assert reg.count("circle(") == 2


def test_empty_field_gives_a_valid_empty_product(tmp_path, monkeypatch, fitsverify):
    from .test_pipeline import _observation as obs

    ev, cal, _, _ = obs(np.random.default_rng(3), [])
    l2 = write_events(tmp_path / "empty_l2.fits", ev)
    monkeypatch.setattr(bandpsf.DetectionCalibration, "from_calset", classmethod(lambda cls, calset: cal))
    monkeypatch.setattr(standalone, "date_of_inputs", lambda inputs: None)
    out = tmp_path / "empty.fits"
    assert main(["detect", str(l2), "--out", str(out), "--det-ml-threshold", "15"]) == 0
    assert validate_file(out) == []
    res = fitsverify(out)
    assert res.ok, res.output
    prod = read_product(out, "MXT_SOP_SKY")
    assert len(prod.table("SRCLIST")) == 0 and len(prod.table("SRCBANDS")) == 0
    assert "circle(" not in (tmp_path / "empty.reg").read_text()


def test_bands_and_threshold_options(observation):
    l2, _, _, tmp = observation
    out = tmp / "one_band.fits"
    assert main(["detect", str(l2), "--out", str(out), "--bands", "0.3-10", "--det-ml-threshold", "1e6"]) == 0
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
