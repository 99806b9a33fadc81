"""XBAND-GP and XBAND-CP end to end on a small dataset with a simple calibration set.

The real bricks (calibration chain, two-stage detection, burst identification, field
image) run through :func:`execute`.  The calibration set is the simple one of
:mod:`.xband_data` (Gaussian PSF, flat focal plane), so these tests check the pipelines
and their contract, not the instrument model: the bundled CALDB and the simulation bench
are exercised by the end-to-end tests of the harness.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from astropy.io import fits

from mxt_pipeline.datapaths import REPO_ROOT
from mxt_pipeline.io import read_product, validate_file
from mxt_pipeline.io.lightcurve_product import read_light_curve
from mxt_pipeline.pipelines import ports
from mxt_pipeline.pipelines.collection import verify_collection
from mxt_pipeline.pipelines.execute import FAST_DIR, execute, run_dataset
from mxt_pipeline.pipelines.runtime import BurstPosition, request_from_dataset
from mxt_pipeline.pipelines.status import ProcessingStatus, read_status

from .xband_data import OBS_ID, T0, SimpleFullCalibrationSet, make_dataset, sky_offset_arcsec

S = ProcessingStatus
EPOCH = "1767225600"  # SOURCE_DATE_EPOCH: FITS DATE keywords fixed so products compare byte for byte


def _snapshot(root):
    """Content, mode and modification time of every file and folder of a dataset."""
    out = {}
    for p in sorted([root, *root.rglob("*")]):
        st = p.stat()
        out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
                                         st.st_mode, st.st_mtime_ns)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The dataset, made read-only: every run of this module must work without writing to it."""
    root = tmp_path_factory.mktemp("e2e") / "obs"
    truth = make_dataset(root, n_source=800, n_background=600, seed=11)
    paths = sorted([root, *root.rglob("*")], key=lambda p: len(p.parts), reverse=True)
    for p in paths:
        p.chmod(0o555 if p.is_dir() else 0o444)
    truth["snapshot"] = _snapshot(root)
    yield root, truth
    for p in reversed(paths):
        p.chmod(0o755 if p.is_dir() else 0o644)


@pytest.fixture(scope="module")
def gp_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("gp") / "out"
    real = ports.sha256_file

    def counting(path, *args, **kwargs):
        HASHED.append(str(path))
        return real(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
        mp.setattr(ports, "sha256_file", counting)
        return run_dataset(dataset[0], "xband-gp", out, caldb=SimpleFullCalibrationSet())


#: Files checksummed during the ``gp_run`` fixture's run.
HASHED: list[str] = []


def test_each_input_file_is_hashed_once(dataset, gp_run):
    # The run key's input records are reused by the run context (one checksum per file).
    root = str(dataset[0])
    inputs = [p for p in HASHED if p.startswith(root)]
    assert len(inputs) >= 3
    assert len(inputs) == len(set(inputs)), [p for p in set(inputs) if inputs.count(p) > 1]


def test_gp_finds_the_source_within_r90(dataset, gp_run):
    _, truth = dataset
    assert gp_run.exit_code == 0, gp_run.status.reason
    src = read_product(gp_run.collection / f"mxt_sop_sky_{OBS_ID}.fits").table("SRCLIST")
    assert len(src) >= 1
    best = src[0]
    offset = sky_offset_arcsec(best["RA"], best["DEC"], truth["ra"], truth["dec"])
    assert offset < best["ERR_R90"], (offset, best["ERR_R90"])


def test_gp_products_pass_validate_and_fitsverify(gp_run, fitsverify):
    fits_files = sorted(gp_run.collection.glob("*.fits"))
    assert {p.name for p in fits_files} == {f"mxt_l2_evt_{OBS_ID}.fits", f"mxt_sop_sky_{OBS_ID}.fits",
                                            f"mxt_lc_{OBS_ID}_src1.fits"}  # fmt: skip
    for p in fits_files:
        assert validate_file(p) == [], p
        assert fitsverify(p).ok, fitsverify(p).output
    assert verify_collection(gp_run.collection) == []


def test_gp_report_breaks_time_down_per_brick(gp_run):
    rep = json.loads((gp_run.collection / "run_report.json").read_text())
    assert [b["name"] for b in rep["bricks"]] == ["calibrate", "detect", "lightcurves", "image_preview"]
    # The times are in the run's record beside the collection (not published).
    clock = json.loads((gp_run.collection.parent / "run_records" / gp_run.collection.name / "timings.json").read_text())
    assert set(clock["timing"]["per_brick_s"]) == {"calibrate", "detect", "lightcurves", "image_preview"}
    assert clock["timing"]["total_s"] >= sum(clock["timing"]["per_brick_s"].values())
    assert "timing" not in rep and all("elapsed_s" not in b for b in rep["bricks"])
    calib = rep["bricks"][0]
    assert {c["code"] for c in calib["caldb"]} == {"TELDEF", "CTI", "GAINOFF", "MULTIPLICITY", "PATTERN", "BADPIX"}
    assert all(len(o["sha256"]) == 64 for b in rep["bricks"] for o in b["outputs"])
    md = (gp_run.collection / "run_report.md").read_text()
    assert "| detect | SUCCESS |" in md


def test_gp_light_curve_recovers_the_source_counts(dataset, gp_run):
    _, truth = dataset
    lc = read_light_curve(gp_run.collection / f"mxt_lc_{OBS_ID}_src1.fits")
    assert "TRIGTIME" not in lc.meta  # no trigger in XBAND-GP
    # Net counts corrected for the PSF fraction outside the circle = the simulated counts.
    net = float(np.sum(lc.rate * lc.exposure))
    assert abs(net - truth["n_source"]) < 4.0 * np.sqrt(truth["n_source"] + 50), net
    assert lc.exposure.sum() == pytest.approx(1000.0, rel=1e-6)
    png = (gp_run.collection / f"mxt_lc_{OBS_ID}_src1.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    rep = json.loads((gp_run.collection / "run_report.json").read_text())
    lcb = next(b for b in rep["bricks"] if b["name"] == "lightcurves")
    assert [c["code"] for c in lcb["caldb"]] == ["PSF"]
    assert lcb["metrics"]["psf_fraction"] == pytest.approx(0.5, abs=1e-3)


def test_cp_publishes_the_burst_first(dataset, tmp_path):
    _, truth = dataset
    out = tmp_path / "out"
    req = request_from_dataset(dataset[0], "xband-cp", out, caldb=SimpleFullCalibrationSet(), burst_id="sb26070501",
                               burst_position=BurstPosition(truth["ra"] + 0.02, truth["dec"] - 0.03, 6.0))  # fmt: skip
    req.target = replace(req.target, trigger_time=T0 - 100.0)
    outcome = execute(req)
    assert outcome.exit_code == 0, outcome.status.reason
    st = read_status(out)
    assert st.early_products == [f"{FAST_DIR}/mxt_burst_{OBS_ID}.json"]
    burst = json.loads((out / FAST_DIR / f"mxt_burst_{OBS_ID}.json").read_text())
    assert burst["detected"] and burst["burst_id"] == "sb26070501" and burst["trigger"]["origin"] == "trigger"
    assert sky_offset_arcsec(burst["source"]["ra"], burst["source"]["dec"], truth["ra"], truth["dec"]) < burst["source"]["err_r90_arcsec"]
    order = [b.name for b in outcome.result.bricks]
    assert order.index("burst") < order.index("lightcurves") < order.index("image_preview")
    lc = read_light_curve(outcome.collection / f"mxt_lc_{OBS_ID}_src{burst['source']['src_id']}.fits")
    assert lc.meta["TRIGTIME"] == pytest.approx(T0 - 100.0)
    assert (outcome.collection / f"mxt_burst_{OBS_ID}.json").read_bytes() == (out / FAST_DIR / f"mxt_burst_{OBS_ID}.json").read_bytes()


def test_killed_half_way_then_rerun_gives_the_same_products(dataset, gp_run, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    cmd = [sys.executable, "-m", "tests.pipelines.run_xband", str(dataset[0]), str(out), "--kill-in", "detect"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    st = read_status(out)
    assert st.status is S.RUNNING and st.stopped_at["brick"] == "detect"
    proc = subprocess.run(cmd[:-2], cwd=REPO_ROOT, env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    st = read_status(out)
    coll = out / st.collection
    rep = json.loads((coll / "run_report.json").read_text())
    assert [b["resumed"] for b in rep["bricks"]] == [True, False, False, False]
    for name in (f"mxt_sop_sky_{OBS_ID}.reg", f"mxt_img_{OBS_ID}.png", f"mxt_lc_{OBS_ID}_src1.png"):
        a = hashlib.sha256((coll / name).read_bytes()).hexdigest()
        b = hashlib.sha256((gp_run.collection / name).read_bytes()).hexdigest()
        assert a == b, name
    # The calibration report is the same (the chain's step timings are not published).
    reports = [json.loads((c / f"mxt_calib_report_{OBS_ID}.json").read_text()) for c in (coll, gp_run.collection)]
    assert "timing_s" not in reports[0]
    assert reports[0] == reports[1]
    # FITS: every header value and every data byte equal (DATASUM included).  Only the
    # CHECKSUM differs, because astropy writes the wall-clock time in the comment of the
    # CHECKSUM card (not covered by SOURCE_DATE_EPOCH), and that comment is checksummed.
    for name in (f"mxt_l2_evt_{OBS_ID}.fits", f"mxt_sop_sky_{OBS_ID}.fits", f"mxt_lc_{OBS_ID}_src1.fits"):
        diff = fits.FITSDiff(coll / name, gp_run.collection / name, ignore_keywords=["CHECKSUM"],
                             ignore_comments=["DATASUM"], rtol=0.0, atol=0.0)  # fmt: skip
        assert diff.identical, diff.report()


def test_inputs_are_never_modified(dataset, gp_run, tmp_path):
    """After every run of this module (GP, CP, killed and resumed): the inputs are as made."""
    root, truth = dataset
    rerun = run_dataset(root, "xband-gp", tmp_path / "out", caldb=SimpleFullCalibrationSet(),
                        parameters={"detect": {"max_sources": 5}})  # fmt: skip
    assert rerun.exit_code == 0, rerun.status.reason
    assert _snapshot(root) == truth["snapshot"]
    assert not any(p.name.startswith((".", "~")) for p in root.rglob("*"))  # no lock, cache or temp file left


def test_gp_html_report_shows_the_science(gp_run):
    """run_report.html: the sources with position, R90 and DET_ML as in the source list,
    the exposure and its gaps, the previews inline (one self-contained page)."""
    import base64
    import re

    html = (gp_run.collection / "run_report.html").read_text()
    src = read_product(gp_run.collection / f"mxt_sop_sky_{OBS_ID}.fits").table("SRCLIST")
    assert "<h2>Science</h2>" in html and html.index("Science") < html.index("Bricks")
    for row in src:
        assert f"<td>{row['RA']:.4f}</td><td>{row['DEC']:+.4f}</td><td>{row['ERR_R90']:.1f}</td>" in html
        assert f"<td>{row['DET_ML']:.1f}</td>" in html
    rep = json.loads((gp_run.collection / "run_report.json").read_text())
    ontime = rep["bricks"][0]["metrics"]["ontime_s"]
    assert f"<b>Exposure</b> (good time) {ontime:.0f} s" in html
    assert "R90 (&Prime;, 90%)" in html  # the confidence level is stated
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    pngs = sorted(gp_run.collection.glob("*.png"))
    assert len(images) == len(pngs) >= 2
    assert {base64.b64decode(i) for i in images} == {p.read_bytes() for p in pngs}
    md = (gp_run.collection / "run_report.md").read_text()
    assert "## Science" in md and f"{src[0]['ERR_R90']:.1f}" in md
