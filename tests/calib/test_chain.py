"""The whole chain on a simulated dataset: L2 product, order independence, positions, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from mxt_pipeline import constants as C
from mxt_pipeline.calib.badpix import pixel_status_map
from mxt_pipeline.calib.chain import ChainParams, calibrate, calibrate_hits
from mxt_pipeline.calib.energy import CTIInverseTable
from mxt_pipeline.datamodel import GTI, Attitude, RawHits
from mxt_pipeline.errors import MXTCalibrationError, MXTError, MXTFormatError, MXTInputError
from mxt_pipeline.io import validate_file
from mxt_pipeline.io.formats import STATUS_BITS
from mxt_pipeline.io.products import read_events, read_raw_hits
from tests.bricks import calibrate_dataset_dir

from . import dataset as ds
from .linegen import make_line_hits
from .reference import reference_chain


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory, calset):
    root = tmp_path_factory.mktemp("ds")
    ds.write_dataset(root, calset)
    return root


@pytest.fixture(scope="module")
def l2(dataset_dir, calset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("l2")
    events, report, out, _ = calibrate_dataset_dir(dataset_dir, calset, folder)
    (rep_path,) = folder.glob("mxt_calib_report_*.json")
    return out, events, report, rep_path


def test_l2_file_is_valid(l2, fitsverify):
    out, events, _, _ = l2
    assert validate_file(out) == []
    res = fitsverify(out)
    assert res.errors == 0, res.output
    back = read_events(out)
    assert len(back) == len(events) > 5000
    for col in ("TIME", "RAWY", "PI", "PATTERN", "STATUS"):
        np.testing.assert_array_equal(back[col], events[col])
    np.testing.assert_allclose(back["RA"], events["RA"])
    assert back.gti == events.gti
    assert np.all(np.diff(back["TIME"]) >= 0)
    assert back.meta["OBS_ID"] == "SIM0001" and back.meta["RA_NOM"] == ds.POINTING[0]


def test_gti_and_gaps(l2, dataset_dir):
    _, events, report, rep_path = l2
    t0 = ds.T0
    assert events.gaps.of_origin("TELEMETRY") == GTI([t0 + 260.0], [t0 + 270.0])
    assert events.gaps.of_origin("SAA") == GTI([ds.SAA_PASSAGE[0]], [ds.SAA_PASSAGE[1]])
    assert events.gti.exposure == pytest.approx(300.0 - 10.0 - 30.0)
    assert events.gti.contains(events["TIME"]).all()
    assert report["n_hits_outside_gti"] > 0
    saved = json.loads(rep_path.read_text())
    # Frames of 120-150 s were downlinked twice (passes 3 and 1).
    f3 = set(read_raw_hits(dataset_dir / "l1/mxt_l1_raw_SIM0001_p03.fits")["FRAME"].tolist())
    f1 = set(read_raw_hits(dataset_dir / "l1/mxt_l1_raw_SIM0001_p01.fits")["FRAME"].tolist())
    assert saved["ingest"]["n_duplicate_frames"] == len(f3 & f1) > 250
    assert saved["ingest"]["dropped"]["duplicate_frame"] > 0
    assert saved["screening"]["lost_by_origin"]["SAA"] == pytest.approx(30.0)


def test_hot_pixel_found_and_flagged(l2):
    _, events, report, _ = l2
    assert list(ds.HOT_PIXEL) in report["hot_pixels"]
    on = (events["RAWY"] == ds.HOT_PIXEL[0]) & (events["RAWZ"] == ds.HOT_PIXEL[1])
    assert on.sum() > 500
    assert np.all(events["STATUS"][on] & STATUS_BITS["HOTPIX"])
    # Nothing else in the field is a hot pixel.
    assert len(report["hot_pixels"]) == 1


def test_report_counts_are_those_of_the_events(l2):
    """The calibration report's tallies per STATUS bit and per PATTERN are the event
    list's, bit by bit (the hot pixel makes HOTPIX non-zero, so a wrong bit test shows)."""
    _, events, report, _ = l2
    st = np.asarray(events["STATUS"]).astype(np.int64)
    assert report["status_counts"] == {name: int(np.count_nonzero(st & bit)) for name, bit in STATUS_BITS.items()}
    assert report["status_counts"]["HOTPIX"] > 500
    assert sum(report["pattern_counts"].values()) == report["n_events"] == len(events)
    pat = np.asarray(events["PATTERN"])
    for k, v in report["pattern_counts"].items():
        assert v == int(np.count_nonzero(pat == int(k)))


def test_source_lands_at_its_position(l2):
    """Events within 1' of the simulated source: their mean sky position is the source's."""
    _, events, _, _ = l2
    src = SkyCoord(ds.SOURCE[0] * u.deg, ds.SOURCE[1] * u.deg)
    ev = SkyCoord(events["RA"] * u.deg, events["DEC"] * u.deg)
    near = ev.separation(src).arcsec < 60.0
    assert near.sum() > 3000
    mean = SkyCoord(np.mean(events["RA"][near]) * u.deg, np.mean(events["DEC"][near]) * u.deg)
    # Scatter 1.5 px = 20" per photon, > 3000 photons: statistical error < 0.5".
    assert mean.separation(src).arcsec < 2.0


def test_lines_in_l2(l2):
    _, events, _, _ = l2
    e = events["ENERGY"].astype(float)
    good = (events["STATUS"] & 0b1111) == 0
    for line in (1.4867, 5.895):
        sel = good & (np.abs(e - line) < 0.3)
        assert abs(np.median(e[sel]) - line) < 0.005
    assert np.all(events["PI"] == np.clip(np.floor(e * 100.0), 0, 1023))


def test_pass_order_gives_the_same_l2(dataset_dir, calset, tmp_path, l2):
    """The manifest lists the passes in another order: identical EVENTS, GTI and GAPS."""
    other = tmp_path / "ds2"
    shutil.copytree(dataset_dir, other)
    manifest = json.loads((other / "dataset.json").read_text())
    manifest["files"]["l1"] = manifest["files"]["l1"][::-1]
    (other / "dataset.json").write_text(json.dumps(manifest))
    _, _, out, _ = calibrate_dataset_dir(other, calset, tmp_path / "l2b")
    a, b = read_events(l2[0]), read_events(out)
    for col in a.table.colnames:
        np.testing.assert_array_equal(a[col], b[col], err_msg=col)
    assert a.gti == b.gti
    np.testing.assert_array_equal(a.gaps.to_table()["ORIGIN"], b.gaps.to_table()["ORIGIN"])
    np.testing.assert_array_equal(a.gaps.start, b.gaps.start)


def test_empty_observation_gives_a_valid_empty_file(tmp_path, calset, fitsverify):
    ds.write_dataset(tmp_path / "e", calset, empty=True)
    events, report, out, result = calibrate_dataset_dir(tmp_path / "e", calset, tmp_path / "out")
    assert len(events) == 0 and report["n_events"] == 0 and str(result.status) == "NO_DATA"
    assert validate_file(out) == []
    assert fitsverify(out).errors == 0
    back = read_events(out)
    assert len(back) == 0 and back.gti.exposure == pytest.approx(260.0)


def test_matches_the_per_frame_reference(calset):
    """Energies, patterns and positions equal the plain per-frame reference implementation."""
    rng = np.random.default_rng(8)
    hits, _ = make_line_hits(np.exp(rng.uniform(np.log(0.3), np.log(9.0), 3000)), 3000, rng, calset,
                             photons_per_frame=15)  # fmt: skip
    t = hits["TIME"]
    ts = np.arange(t[0] - 2, t[-1] + 3, 1.0)
    att = Attitude.from_pointing(ts, 200.0 + 0 * ts, 45.0 + (ts - ts[0]) * 1e-4, 10.0 + 0 * ts)
    split, primary = calset.pattern.split_threshold, calset.pattern.primary_threshold
    table, _ = calibrate_hits(
        hits, att, {"teldef": calset.teldef, "gainoff": calset.gainoff, "multiplicity": calset.multiplicity},
        ra_nom=200.0, dec_nom=45.0, split=split, primary=primary,
        status_map=pixel_status_map(np.zeros((256, 256), bool)),
        cti_inverse=CTIInverseTable.from_model(calset.cti), dither=False,
    )  # fmt: skip
    ref = reference_chain(hits, att, calset, split, primary, 200.0, 45.0)
    assert len(table) == ref["TIME"].size > 2500
    for col in ("TIME", "RAWY", "RAWZ", "PATTERN", "MULTIPLICITY"):
        np.testing.assert_array_equal(np.asarray(table[col]), ref[col], err_msg=col)
    np.testing.assert_allclose(table["ENERGY"], ref["ENERGY"], rtol=2e-6)  # float32 column
    np.testing.assert_allclose(table["RA"], ref["RA"], atol=1e-9)
    np.testing.assert_allclose(table["DEC"], ref["DEC"], atol=1e-9)
    np.testing.assert_allclose(table["X"], ref["X"], atol=1e-3)
    np.testing.assert_allclose(table["Y"], ref["Y"], atol=1e-3)


def test_chain_switches_and_errors(calset):
    rng = np.random.default_rng(9)
    hits, _ = make_line_hits(1.5, 200, rng, calset)
    t = hits["TIME"]
    rh = RawHits(hits, gti=GTI([t[0]], [t[-1] + 1]), meta={"PASS_ID": 1})
    ts = np.arange(t[0] - 1, t[-1] + 2, 1.0)
    att = Attitude.from_pointing(ts, 0 * ts, 0 * ts, 0 * ts)
    with pytest.raises(MXTInputError, match="OBS_ID"):
        calibrate([rh], att, None, None, calset)
    ev, rep = calibrate([rh], att, None, None, calset, ChainParams(obs_id="X", hot_pixel_search=False))
    assert len(ev) == 0 and rep.n_hits_outside_gti == len(rh)  # no ANG: all EARTH gap
    assert rep.steps["cti_correction"] is True

    class NoCTI:
        teldef, gainoff, pattern, multiplicity, badpix, cti = (
            calset.teldef, calset.gainoff, calset.pattern, calset.multiplicity, None, None)  # fmt: skip

    with pytest.raises(MXTCalibrationError, match="CTI"):
        calibrate([rh], att, None, None, NoCTI(), ChainParams(obs_id="X"))
    with pytest.raises(MXTCalibrationError, match="thresholds"):
        calibrate([rh], att, None, None, calset, ChainParams(obs_id="X", split_threshold_kev=0.5))


def test_dataset_errors(tmp_path, calset):
    with pytest.raises(MXTInputError, match="manifest not found"):
        calibrate_dataset_dir(tmp_path, calset, tmp_path / "out")
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(MXTFormatError, match="JSON") as err:
        calibrate_dataset_dir(tmp_path, calset, tmp_path / "out")
    assert err.value.file.endswith("dataset.json")
    (tmp_path / "dataset.json").write_text(json.dumps({"obs_id": "A"}))
    with pytest.raises(MXTFormatError, match="files"):
        calibrate_dataset_dir(tmp_path, calset, tmp_path / "out")
    (tmp_path / "dataset.json").write_text(json.dumps({"obs_id": "A", "files": {"l1": [], "att": "a.fits"}}))
    with pytest.raises(MXTInputError, match="no L1"):
        calibrate_dataset_dir(tmp_path, calset, tmp_path / "out")
    (tmp_path / "dataset.json").write_text(json.dumps({"obs_id": "A", "files": {"l1": ["nope.fits"], "att": "a.fits"}}))
    with pytest.raises(MXTError, match="attitude file not found") as err:
        calibrate_dataset_dir(tmp_path, calset, tmp_path / "out")
    assert err.value.file.endswith("a.fits")
    (tmp_path / "a.fits").write_bytes(b"")
    with pytest.raises(MXTError, match="L1 file") as err:
        calibrate_dataset_dir(tmp_path, calset, tmp_path / "out")
    assert err.value.file.endswith("nope.fits")
    assert C.N_PIX == 256
