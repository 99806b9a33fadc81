"""End to end with the real calibration models: ``mxt simulate ... && mxt run ...``.

No calibration argument anywhere: the simulation bench and the pipelines both find the
bundled synthetic CALDB (``fixtures_caldb/``) through ``CaDBIO()``, as the README's
first command does.  The GRB case needs the Swift-XRT light curves (skipped without
them); the GP case needs nothing outside the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mxt_pipeline.cli.main import main
from mxt_pipeline.datapaths import REPO_ROOT, bundled_caldb_dir, swift_xrt_dir
from mxt_pipeline.geometry import angular_separation_arcsec as angular_distance_arcsec
from mxt_pipeline.io import read_product, validate_file
from mxt_pipeline.io.lightcurve_product import read_light_curve
from mxt_pipeline.pipelines.collection import verify_collection
from mxt_pipeline.pipelines.execute import FAST_DIR
from mxt_pipeline.pipelines.status import ProcessingStatus, read_status

pytestmark = pytest.mark.skipif(not (bundled_caldb_dir() / "data").is_dir(), reason="no bundled CALDB")

#: Every code name of the X-band pipelines.
CODES = {"TELDEF", "CTI", "GAINOFF", "MULTIPLICITY", "PATTERN", "BADPIX", "PSF", "EFFAREA", "VIGNET", "SYSERR"}


def _check_collection(coll, fitsverify):
    assert verify_collection(coll) == []
    fits_files = sorted(coll.glob("*.fits"))
    kinds = {p.name.split("_")[1] for p in fits_files}
    assert {"l2", "sop", "lc"} <= kinds, fits_files
    for p in fits_files:
        assert validate_file(p) == [], p
        assert fitsverify(p).ok, fitsverify(p).output
    report = json.loads((coll / "run_report.json").read_text())
    used = {c["code"]: c for b in report["bricks"] for c in b["caldb"]}
    assert set(used) == CODES
    root = bundled_caldb_dir().resolve()
    assert all(root in Path(c["path"]).resolve().parents for c in used.values())
    for p in coll.glob("mxt_lc_*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return report


@pytest.fixture(scope="module")
def grb(tmp_path_factory):
    if swift_xrt_dir() is None:
        pytest.skip("the Swift-XRT light curves are not available")
    root = tmp_path_factory.mktemp("grb")
    ds, out = root / "input", root / "out"
    assert main(["simulate", "grb", "--duration", "10000", "--seed", "1", "--out", str(ds), "--no-progress"]) == 0
    code = main(["run", str(ds), "--pipeline", "xband-cp", "--out", str(out), "--no-progress"])
    return ds, out, code


def test_readme_command_on_a_simulated_grb(grb, fitsverify):
    ds, out, code = grb
    assert code == 0
    st = read_status(out)
    assert st.status is ProcessingStatus.SUCCESS and st.early_products == [f"{FAST_DIR}/mxt_burst_{st.obs_id}.json"]
    coll = out / st.collection
    _check_collection(coll, fitsverify)
    truth = json.loads((ds / "truth.json").read_text())
    src = truth["sources"][0]
    burst = json.loads((coll / f"mxt_burst_{st.obs_id}.json").read_text())
    # No trigger position given: the nominal pointing with 30'; the burst is still found.
    assert burst["detected"] and burst["trigger"]["origin"] == "pointing"
    offset = float(angular_distance_arcsec(burst["source"]["ra"], burst["source"]["dec"], src["ra"], src["dec"]))
    assert offset < burst["source"]["err_r90_arcsec"], (offset, burst["source"])
    lc = read_light_curve(coll / f"mxt_lc_{st.obs_id}_src{burst['source']['src_id']}.fits")
    assert lc.meta["TRIGTIME"] == pytest.approx(truth["trigger_time"])
    # An afterglow fades: the first bins are brighter than the last ones.
    assert np.mean(lc.rate[:3]) > 2.0 * np.mean(lc.rate[-3:])


def test_ten_ks_grb_runs_in_under_a_minute_with_the_time_per_brick(grb):
    """The 10 ks GRB observation (about 1e5 raw hits) end to end on one process."""
    _, out, code = grb
    st = read_status(out)
    report = json.loads((out / st.collection / "run_report.json").read_text())
    calib = next(b for b in report["bricks"] if b["name"] == "calibrate")
    assert calib["metrics"]["n_hits_read"] > 90_000
    timing = json.loads((out / "run_records" / st.collection / "timings.json").read_text())["timing"]
    assert set(timing["per_brick_s"]) == {"calibrate", "detect", "burst", "lightcurves", "image_preview"}
    # The report breaks the time down per brick (the 60 s figure is read off it,
    # not asserted: wall-clock limits do not belong in tests on shared machines).
    assert 0.0 < sum(timing["per_brick_s"].values()) <= timing["total_s"], timing


@pytest.fixture(scope="module")
def gp(tmp_path_factory):
    from mxt_pipeline.pipelines.execute import run_dataset

    root = tmp_path_factory.mktemp("gp")
    ds = root / "input"
    assert main(["simulate", "gp", "--sources", "1", "--duration", "8000", "--seed", "4", "--out", str(ds),
                 "--no-progress"]) == 0  # fmt: skip
    return ds, run_dataset(ds, "xband-gp", root / "out")


def test_gp_with_the_bundled_caldb(gp, fitsverify):
    ds, outcome = gp
    assert outcome.exit_code == 0, outcome.status.reason
    report = _check_collection(outcome.collection, fitsverify)
    assert report["versions"]["caldb"] == outcome.status.versions["caldb"]
    truth = json.loads((ds / "truth.json").read_text())["sources"][0]
    table = read_product(outcome.collection / f"mxt_sop_sky_{outcome.status.obs_id}.fits").table("SRCLIST")
    d = angular_distance_arcsec(table["RA"], table["DEC"], truth["ra"], truth["dec"])
    best = int(np.argmin(d))
    assert d[best] < table["ERR_R90"][best], (d[best], table["ERR_R90"][best])
    # Two measures of the source counts agree: the detection's ML fit over the whole image
    # and the light curve's aperture photometry corrected by the PSF fraction (the
    # circle holds half the PSF: without that correction the counts would be halved).
    # Not closer than 25%: the ML rate is vignetting-corrected, the light curve is not.
    lc = read_light_curve(outcome.collection / f"mxt_lc_{outcome.status.obs_id}_src{int(table['SRC_ID'][best])}.fits")
    events = read_product(outcome.collection / f"mxt_l2_evt_{outcome.status.obs_id}.fits")
    gti = events.table("GTI")
    assert float(np.sum(lc.exposure)) == pytest.approx(float(np.sum(gti["STOP"] - gti["START"])), rel=1e-6)
    net = float(np.sum(lc.rate * lc.exposure))
    ml = float(table["RATE"][best]) * float(np.sum(lc.exposure))
    assert net == pytest.approx(ml, rel=0.25), (net, ml)


def _tree(folder: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def test_reprocess_when_the_calibration_changes(gp, tmp_path):
    """The operators' case: a new SYSERR file enters the CALDB, the scheduler reprocesses."""
    import shutil

    from mxt_pipeline.caldb.products import load_calibration
    from mxt_pipeline.caldb.products.syserr import Systematics

    _, first = gp
    caldb = tmp_path / "caldb"
    shutil.copytree(bundled_caldb_dir(), caldb)
    path = next((caldb / "data" / "svom" / "mxt" / "bcf" / "syserr").glob("*.fits"))
    old = load_calibration("SYSERR", path)
    Systematics(60.0).to_fits(path, old.meta)
    assert main(["caldb", "index", "--root", str(caldb), "--instrument", "MXT"]) == 0
    before = _tree(first.collection)

    assert main(["run", "--reprocess", str(first.collection), "--caldb", str(caldb), "--no-progress"]) == 0
    out = first.collection.parent
    st = read_status(out)
    second = out / st.collection
    assert second != first.collection and second.name.endswith("_v002")
    assert st.versions["caldb"] != first.status.versions["caldb"]
    assert _tree(first.collection) == before  # the previous collection is never touched
    name = f"mxt_sop_sky_{st.obs_id}.fits"
    r_old = read_product(first.collection / name).table("SRCLIST")["ERR_R90"]
    r_new = read_product(second / name).table("SRCLIST")["ERR_R90"]
    assert np.all(r_new > r_old + 20.0)  # 60" instead of 25" of systematic, in quadrature
    evt = f"mxt_l2_evt_{st.obs_id}.fits"  # the calibration chain does not use SYSERR
    np.testing.assert_array_equal(read_product(second / evt).table("EVENTS")["ENERGY"],
                                  read_product(first.collection / evt).table("EVENTS")["ENERGY"])  # fmt: skip
    # Idempotent: the same reprocessing again publishes nothing new.
    assert main(["run", "--reprocess", str(first.collection), "--caldb", str(caldb), "--no-progress"]) == 0
    again = read_status(out)
    assert again.already_done and again.collection == second.name
    assert sorted(p.name for p in out.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name != "run_records") == sorted(
        [first.collection.name, second.name])  # fmt: skip


@pytest.mark.skipif(not (REPO_ROOT / "golden" / "grb_bright" / "input" / "dataset.json").is_file(),
                    reason="the golden datasets are not generated")  # fmt: skip
def test_readme_first_command_on_the_golden_grb(tmp_path, monkeypatch):
    """``mxt run golden/grb_bright/input --pipeline xband-cp --out out/``, from the repository root."""
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.delenv("CALDB", raising=False)
    monkeypatch.delenv("MXT_CALDB_URL", raising=False)
    before = _tree(REPO_ROOT / "golden" / "grb_bright" / "input")
    out = tmp_path / "out"
    assert main(["run", "golden/grb_bright/input", "--pipeline", "xband-cp", "--out", str(out), "--no-progress"]) == 0
    st = read_status(out)
    coll = out / st.collection
    truth = json.loads((REPO_ROOT / "golden" / "grb_bright" / "input" / "truth.json").read_text())["sources"][0]
    burst = json.loads((coll / f"mxt_burst_{st.obs_id}.json").read_text())
    offset = float(angular_distance_arcsec(burst["source"]["ra"], burst["source"]["dec"], truth["ra"], truth["dec"]))
    assert offset < burst["source"]["err_r90_arcsec"]
    assert (coll / f"mxt_lc_{st.obs_id}_src{burst['source']['src_id']}.fits").is_file()
    assert _tree(REPO_ROOT / "golden" / "grb_bright" / "input") == before  # the golden input is only read
