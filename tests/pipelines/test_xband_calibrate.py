"""The real ``calibrate`` brick on a small dataset: products, faults, statuses.

Runs the calibration chain of :mod:`mxt_pipeline.calib` through the brick and through
:func:`execute` (a pipeline made of this brick alone, since the detection needs the
CALDB PSF): valid L2 products, a missing pass (PARTIAL, TELEMETRY gap), a corrupted or
truncated pass (BAD_INPUT naming the file), an empty observation (NO_DATA with a valid
empty L2 file), a science database that is down (SERVICE_UNAVAILABLE after retries).
"""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from mxt_pipeline.io import validate_file
from mxt_pipeline.io.products import read_events
from mxt_pipeline.pipelines import BrickStatus, Pipeline
from mxt_pipeline.pipelines.bricks.calibrate import CALIBRATE
from mxt_pipeline.pipelines.execute import execute
from mxt_pipeline.pipelines.runtime import request_from_dataset
from mxt_pipeline.pipelines.status import ProcessingStatus, read_status
from mxt_pipeline.pipelines.xband_gp import EXTERNAL_INPUTS

from .toybricks import TOKEN
from .xband_data import LINE_KEV, OBS_ID, SimpleCalibrationSet, make_dataset, sky_offset_arcsec

S = ProcessingStatus
CALIB_ONLY = Pipeline("xband-calib", [CALIBRATE], external=EXTERNAL_INPUTS)
L2 = f"mxt_l2_evt_{OBS_ID}.fits"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "obs"
    truth = make_dataset(root)
    return root, truth


def _copy(dataset, tmp_path):
    dst = tmp_path / "obs"
    shutil.copytree(dataset[0], dst)
    return dst


def _run(ds, out, **kw):
    req = request_from_dataset(ds, "xband-gp", out, caldb=SimpleCalibrationSet(), **kw)
    return execute(req, pipeline=CALIB_ONLY)


def test_standalone_products(dataset, tmp_path, fitsverify):
    root, truth = dataset
    res = CALIBRATE.run_standalone({"observation": root}, out_dir=tmp_path, caldb=SimpleCalibrationSet())
    assert res.status is BrickStatus.SUCCESS
    path = tmp_path / L2
    assert validate_file(path) == []
    assert fitsverify(path).ok
    ev = read_events(path)
    assert len(ev) == truth["n_events"] and ev.gti.exposure == pytest.approx(1000.0)
    np.testing.assert_allclose(ev["ENERGY"], LINE_KEV, atol=0.02)  # gain, offset and CTI undone
    # The source events (within 3 px of the brightest pixel) sit at the true position.
    y, z = ev["RAWY"].astype(int), ev["RAWZ"].astype(int)
    peak = np.unravel_index(np.argmax(np.bincount(y * 256 + z, minlength=65536)), (256, 256))
    near = (np.abs(y - peak[0]) <= 3) & (np.abs(z - peak[1]) <= 3)
    assert sky_offset_arcsec(np.mean(ev["RA"][near]), np.mean(ev["DEC"][near]), truth["ra"], truth["dec"]) < 5.0
    rec = {r.port for r in res.inputs}
    assert rec == {"observation", "l1_passes", "attitude", "angles", "saa"}  # the SAA file by week number


def test_pipeline_success_collection(dataset, tmp_path):
    out = tmp_path / "out"
    outcome = _run(dataset[0], out)
    assert outcome.exit_code == 0
    assert validate_file(outcome.collection / L2) == []
    man = json.loads((outcome.collection / "manifest.json").read_text())
    assert {f["path"] for f in man["files"] if f["role"] == "product"} == {L2}
    assert {i["port"] for i in man["inputs"]} == {"l1", "att", "ang", "saa", "manifest"}


def test_missing_pass_is_partial_with_a_telemetry_gap(dataset, tmp_path):
    ds = _copy(dataset, tmp_path)
    gone = sorted((ds / "l1").glob("*.fits"))[0]
    gone.unlink()
    outcome = _run(ds, tmp_path / "out")
    st = read_status(tmp_path / "out")
    assert st.status is S.PARTIAL and outcome.exit_code == 3
    assert outcome.result.bricks[0].status is BrickStatus.DEGRADED
    assert gone.name in outcome.result.bricks[0].warnings[0]
    ev = read_events(outcome.collection / L2)
    assert validate_file(outcome.collection / L2) == []
    assert ev.gti.exposure == pytest.approx(500.0, abs=1.0)
    tel = ev.gaps.of_origin("TELEMETRY")
    assert tel.exposure == pytest.approx(500.0, abs=1.0)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_pass_is_bad_input_naming_the_file(dataset, tmp_path, damage):
    ds = _copy(dataset, tmp_path)
    bad = sorted((ds / "l1").glob("*.fits"))[-1]
    data = bytearray(bad.read_bytes())
    if damage == "flip":
        data[2880 * 3 + 100] ^= 0xFF  # a byte inside the EVENTS data
    else:
        data = data[: len(data) // 2]
    bad.write_bytes(bytes(data))
    outcome = _run(ds, tmp_path / "out")
    st = read_status(tmp_path / "out")
    assert st.status is S.BAD_INPUT and outcome.exit_code == 10
    assert st.stopped_at == {"brick": "calibrate", "index": 0, "phase": "inputs"}
    assert st.reason["file"] == str(bad) and st.reason["type"] == "MXTFormatError"
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith("xband-gp_")]


def test_empty_observation_is_no_data_with_valid_products(tmp_path, fitsverify):
    ds = tmp_path / "obs"
    make_dataset(ds, n_source=0, n_background=0)
    outcome = _run(ds, tmp_path / "out")
    assert outcome.status.status is S.NO_DATA and outcome.exit_code == 4
    path = outcome.collection / L2
    assert validate_file(path) == [] and fitsverify(path).ok
    ev = read_events(path)
    assert len(ev) == 0 and ev.gti.exposure == pytest.approx(1000.0)


def test_science_database_down_is_service_unavailable(dataset, tmp_path):
    ds = _copy(dataset, tmp_path)
    shutil.rmtree(ds / "saa")  # the SAA files must come from the science database
    seen = []

    class Down(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Down)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        outcome = _run(ds, tmp_path / "out", sdb_url=url, max_tries=2, token=TOKEN)
    finally:
        server.shutdown()
        server.server_close()
    st = read_status(tmp_path / "out")
    assert st.status is S.SERVICE_UNAVAILABLE and outcome.exit_code == 13
    assert st.stopped_at["brick"] == "calibrate" and st.stopped_at["phase"] == "inputs"
    assert len(seen) == 2 and all(a == f"Bearer {TOKEN}" for _, a in seen)
    assert seen[0][0].endswith("mxt_saa_w496.fits")  # requested by week number
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file():
            assert TOKEN not in f.read_text(errors="replace")
