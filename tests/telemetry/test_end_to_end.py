"""Telemetry -> preprocess -> XBAND-GP: identical products without defects, visible loss with them.

The dataset and the simple calibration set are those of the pipeline end-to-end tests
(:mod:`tests.pipelines.xband_data`).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mxt_pipeline.cli.preprocess import preprocess_to_dataset
from mxt_pipeline.io import read_product
from mxt_pipeline.io.dataset_manifest import read_manifest
from mxt_pipeline.io.products import read_attitude, read_raw_hits
from mxt_pipeline.io.telemetry_stream import (
    REPORT_NAME,
    read_packet_file,
    write_telemetry,
)
from mxt_pipeline.pipelines.execute import run_dataset
from mxt_pipeline.telemetry.downlink import DownlinkDefects
from tests.pipelines.xband_data import (
    OBS_ID,
    SimpleFullCalibrationSet,
    make_dataset,
    sky_offset_arcsec,
)

EPOCH = "1767225600"  # SOURCE_DATE_EPOCH: FITS DATE keywords fixed so products compare byte for byte


def _telemetered(root, out, defects, seed=1):
    m = read_manifest(root)
    passes = [read_raw_hits(root / f) for f in m["files"]["l1"]]
    doc = write_telemetry(passes, read_attitude(root / m["files"]["att"]), root, defects=defects, seed=seed)
    # The preprocess brick run alone, as by `mxt preprocess` and `mxt run --from-telemetry`.
    report = preprocess_to_dataset([root / "telemetry" / p for p in doc["passes"]], out, root)
    return doc, report


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("tm")
    l1 = base / "obs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
        truth = make_dataset(l1, n_source=800, n_background=600, seed=11)
        lossy = base / "obs_lossy"
        shutil.copytree(l1, lossy)
        _, clean = _telemetered(l1, base / "pre", DownlinkDefects())
        doc, dirty = _telemetered(lossy, base / "pre_lossy", DownlinkDefects(
            loss_rate=0.02, overlap_packets=20, reorder_rate=0.02, corrupt_rate=2e-5))
        cal = SimpleFullCalibrationSet()
        out = {name: run_dataset(base / src, "xband-gp", base / f"run_{name}", caldb=cal)
               for name, src in (("l1", "obs"), ("tm", "pre"), ("lossy", "pre_lossy"))}
    return base, truth, out, clean, dirty, doc


def test_without_defect_the_products_equal_the_l1_path_byte_for_byte(runs):
    base, _, out, clean, _, _ = runs
    assert out["l1"].exit_code == 0 and out["tm"].exit_code == 0
    for f in sorted((base / "obs" / "l1").glob("*.fits")) + sorted((base / "obs" / "aux").glob("*.fits")):
        assert (base / "pre" / f.relative_to(base / "obs")).read_bytes() == f.read_bytes(), f.name
    a, b = out["l1"].collection, out["tm"].collection
    products = sorted(p.name for p in a.iterdir() if p.suffix in (".fits", ".png", ".reg"))
    assert any(n.startswith("mxt_l2_evt") for n in products) and any(n.startswith("mxt_lc") for n in products)
    for name in products:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert clean["missing"] == clean["corrupted"] == clean["duplicated"] == 0


def test_with_defects_the_report_adds_up_and_the_loss_is_a_telemetry_gap(runs):
    base, truth, out, _, dirty, doc = runs
    r = json.loads((base / "pre_lossy" / REPORT_NAME).read_text())
    assert r["packets_read"] == sum(len(read_packet_file(f)) for f in (base / "obs_lossy" / "telemetry").rglob("*.dat"))
    assert r["packets_read"] == r["kept"] + r["duplicated"] + r["corrupted"]
    assert r["expected"] == r["kept"] + r["missing"] == doc["packets_generated"]
    assert r["duplicated"] >= 1 and r["corrupted"] == doc["injected"]["corrupted"] and r["reordered"] >= 1
    assert r["lost_intervals"], "2% loss must lose science packets"
    run = out["lossy"]
    assert run.exit_code in (0, 3), run.status.reason
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
