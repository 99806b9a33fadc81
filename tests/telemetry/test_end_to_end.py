"""Telemetry -> preprocess -> XBAND-GP, one pipeline: identical products without defects,
visible loss with them, the preprocess brick recorded, rerun and resumed like any brick.

The dataset and the simple calibration set are those of the pipeline end-to-end tests
(:mod:`tests.pipelines.xband_data`).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mxt_pipeline.calib import chain
from mxt_pipeline.cli.preprocess import preprocess_to_dataset
from mxt_pipeline.io import read_product
from mxt_pipeline.io.dataset_manifest import read_manifest
from mxt_pipeline.io.products import read_attitude, read_raw_hits
from mxt_pipeline.io.telemetry_stream import (
    read_packet_file,
    write_telemetry,
)
from mxt_pipeline.pipelines.execute import run_dataset
from mxt_pipeline.pipelines.reprocess import reprocess
from mxt_pipeline.pipelines.status import ProcessingStatus, read_status
from mxt_pipeline.telemetry.downlink import DownlinkDefects
from tests.pipelines.xband_data import (
    OBS_ID,
    SimpleFullCalibrationSet,
    make_dataset,
    sky_offset_arcsec,
)

EPOCH = "1767225600"  # SOURCE_DATE_EPOCH: FITS DATE keywords fixed so products compare byte for byte
#: One calibration set for the module: its version is part of the run key (a rerun must be "already done").
CAL = SimpleFullCalibrationSet()
LOSSY = DownlinkDefects(loss_rate=0.02, overlap_packets=20, reorder_rate=0.02, corrupt_rate=2e-5)


def _telemeter(root, defects, seed=1):
    m = read_manifest(root)
    passes = [read_raw_hits(root / f) for f in m["files"]["l1"]]
    return write_telemetry(passes, read_attitude(root / m["files"]["att"]), root, defects=defects, seed=seed)


def _telemetry_only(src, dest):
    """A telemetry dataset: the pass folders listed in dataset.json, no L1 file, no ATT."""
    shutil.copytree(src, dest)
    m = read_manifest(dest)
    shutil.rmtree(dest / "l1")
    (dest / m["files"]["att"]).unlink()
    doc = json.loads((dest / "telemetry" / "telemetry.json").read_text())
    m["files"] = {"telemetry": [f"telemetry/{p}" for p in doc["passes"]], "ang": m["files"].get("ang"),
                  "saa": m["files"].get("saa", [])}  # fmt: skip
    (dest / "dataset.json").write_text(json.dumps(m, indent=2))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("tm")
    l1 = base / "obs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
        truth = make_dataset(l1, n_source=800, n_background=600, seed=11)
        lossy = base / "obs_lossy"
        shutil.copytree(l1, lossy)
        _telemeter(l1, DownlinkDefects())
        doc = _telemeter(lossy, LOSSY)
        _telemetry_only(lossy, base / "tm_only")
        cal = CAL
        out = {
            "l1": run_dataset(l1, "xband-gp", base / "run_l1", caldb=cal),
            # The dataset holds both: --from-telemetry (telemetry=True) picks the packets.
            "tm": run_dataset(l1, "xband-gp", base / "run_tm", caldb=cal, telemetry=True),
            "lossy": run_dataset(lossy, "xband-gp", base / "run_lossy", caldb=cal, telemetry=True),
            # Telemetry only: found from the content, no flag.
            "tm_only": run_dataset(base / "tm_only", "xband-gp", base / "run_tm_only", caldb=cal),
        }
    return base, truth, out, doc


def test_the_pipeline_starts_with_the_preprocess_brick_only_on_telemetry(runs):
    _, _, out, _ = runs
    assert [b.name for b in out["l1"].result.bricks][0] == "calibrate"
    for name in ("tm", "lossy", "tm_only"):
        bricks = [b.name for b in out[name].result.bricks]
        assert bricks[:2] == ["preprocess", "calibrate"], (name, bricks)
    # Status, run report and collection record the brick and its defect report.
    base = runs[0]
    st = read_status(base / "run_tm")
    assert [b["name"] for b in st.bricks][0] == "preprocess" and st.bricks[0]["status"] == "SUCCESS"
    coll = out["tm"].collection
    rep = json.loads((coll / "run_report.json").read_text())
    pre = next(b for b in rep["bricks"] if b["name"] == "preprocess")
    assert pre["metrics"]["missing"] == 0 and pre["metrics"]["kept"] == pre["metrics"]["packets_read"] > 0
    tm_report = json.loads((coll / f"mxt_preprocess_report_{OBS_ID}.json").read_text())
    assert tm_report["packets_read"] == pre["metrics"]["packets_read"]
    # The run key hashes the packet files, not the L1 files of the dataset.
    roles = {r["port"] for r in json.loads((coll / "manifest.json").read_text())["inputs"]}
    assert "telemetry" in roles and "l1" not in roles and "att" not in roles


def test_without_defect_the_products_equal_the_l1_path_byte_for_byte(runs):
    base, _, out, _ = runs
    assert out["l1"].exit_code == 0 and out["tm"].exit_code == 0, out["tm"].status.reason
    a, b = out["l1"].collection, out["tm"].collection
    # The preprocess brick's L1 passes and ATT are the dataset's, byte for byte.
    for f in sorted((base / "obs" / "l1").glob("*.fits")) + sorted((base / "obs" / "aux").glob("mxt_att_*.fits")):
        assert (b / f.name).read_bytes() == f.read_bytes(), f.name
    products = sorted(p.name for p in a.iterdir() if p.suffix in (".fits", ".png", ".reg"))
    assert any(n.startswith("mxt_l2_evt") for n in products) and any(n.startswith("mxt_lc") for n in products)
    for name in products:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_the_brick_alone_writes_the_same_l1_dataset(runs, tmp_path, monkeypatch):
    """``mxt preprocess`` (the brick alone) and the brick inside the pipeline agree."""
    base, _, out, _ = runs
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    doc = json.loads((base / "obs" / "telemetry" / "telemetry.json").read_text())
    report = preprocess_to_dataset([base / "obs" / "telemetry" / p for p in doc["passes"]], tmp_path / "pre", base / "obs")
    assert report["missing"] == report["corrupted"] == report["duplicated"] == 0
    for f in sorted((tmp_path / "pre" / "l1").glob("*.fits")):
        assert f.read_bytes() == (out["tm"].collection / f.name).read_bytes(), f.name


def test_with_defects_the_report_adds_up_and_the_loss_is_a_telemetry_gap(runs):
    base, truth, out, doc = runs
    run = out["lossy"]
    assert run.exit_code == 3 and run.status.status is ProcessingStatus.PARTIAL, run.status.reason
    assert run.result.result("preprocess").status == "DEGRADED"
    r = json.loads((run.collection / f"mxt_preprocess_report_{OBS_ID}.json").read_text())
    assert r["packets_read"] == sum(len(read_packet_file(f)) for f in (base / "obs_lossy" / "telemetry").rglob("*.dat"))
    assert r["packets_read"] == r["kept"] + r["duplicated"] + r["corrupted"]
    assert r["expected"] == r["kept"] + r["missing"] == doc["packets_generated"]
    assert r["duplicated"] >= 1 and r["corrupted"] == doc["injected"]["corrupted"] and r["reordered"] >= 1
    assert r["lost_intervals"], "2% loss must lose science packets"
    l2 = read_product(run.collection / f"mxt_l2_evt_{OBS_ID}.fits")
    gaps = l2.table("GAPS")
    tel = gaps[gaps["ORIGIN"] == "TELEMETRY"]
    # Every lost interval (inside the observation) lies in a TELEMETRY gap.
    for x in r["lost_intervals"]:
        mid = 0.5 * (x["start"] + x["stop"])
        assert np.any((tel["START"] <= mid) & (mid < tel["STOP"])), x
    clean_l2 = read_product(out["l1"].collection / f"mxt_l2_evt_{OBS_ID}.fits")
    lost_exposure = clean_l2.header("EVENTS")["ONTIME"] - l2.header("EVENTS")["ONTIME"]
    assert lost_exposure > 0 and abs(lost_exposure - r["lost_time_s"]) <= 0.05 * r["lost_time_s"] + 1e-6
    lc = read_product(next(run.collection.glob(f"mxt_lc_{OBS_ID}_src*.fits")))
    assert "TELEMETRY" in set(lc.table("GAPS")["ORIGIN"])
    src = read_product(run.collection / f"mxt_sop_sky_{OBS_ID}.fits").table("SRCLIST")[0]
    assert sky_offset_arcsec(src["RA"], src["DEC"], truth["ra"], truth["dec"]) < src["ERR_R90"]


def test_a_telemetry_only_dataset_is_found_from_its_content(runs):
    _, _, out, _ = runs
    a, b = out["lossy"].collection, out["tm_only"].collection
    assert out["tm_only"].exit_code == 3
    for name in (f"mxt_preprocess_report_{OBS_ID}.json", f"mxt_l2_evt_{OBS_ID}.fits", f"mxt_sop_sky_{OBS_ID}.fits"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_a_rerun_is_already_done_and_a_failed_run_resumes_after_preprocess(runs, tmp_path, monkeypatch):
    base, _, out, _ = runs
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    cal = CAL
    again = run_dataset(base / "obs", "xband-gp", base / "run_tm", caldb=cal, telemetry=True)
    assert again.status.already_done and again.collection == out["tm"].collection
    # The L1 run of the same dataset is another run (other inputs): not "already done".
    assert out["l1"].status.run_key != out["tm"].status.run_key

    def broken(*args, **kwargs):
        raise RuntimeError("calibration down for the test")

    o = tmp_path / "resume"
    with monkeypatch.context() as mp:
        mp.setattr(chain, "calibrate", broken)
        failed = run_dataset(base / "obs", "xband-gp", o, caldb=cal, telemetry=True)
    assert failed.collection is None and failed.status.stopped_at["brick"] == "calibrate"
    resumed = run_dataset(base / "obs", "xband-gp", o, caldb=cal, telemetry=True)
    assert resumed.exit_code == 0, resumed.status.reason
    assert [(b.name, b.resumed) for b in resumed.result.bricks][:2] == [("preprocess", True), ("calibrate", False)]
    for name in (f"mxt_l1_raw_{OBS_ID}_p01.fits", f"mxt_l2_evt_{OBS_ID}.fits"):
        assert (resumed.collection / name).read_bytes() == (out["tm"].collection / name).read_bytes(), name


def test_reprocessing_a_telemetry_collection_decodes_the_telemetry_again(runs, monkeypatch):
    """The dataset holds L1 files too: the request recorded that the run was on its telemetry."""
    _, _, out, _ = runs
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    again = reprocess(out["tm"].collection, caldb=CAL, force=True)
    assert again.exit_code == 0, again.status.reason
    assert [b.name for b in again.result.bricks][0] == "preprocess"
    assert again.collection != out["tm"].collection
    name = f"mxt_l2_evt_{OBS_ID}.fits"
    assert (again.collection / name).read_bytes() == (out["tm"].collection / name).read_bytes()
