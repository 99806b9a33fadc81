"""A dataset without ATT file runs with the attitude service (``mxt run --attitude-url``).

The same small dataset is run with its ATT file and, without it, with the service
serving that file: the L2 events (EVENTS, GTI, GAPS) are the same.  An archive with a
hole gives an ATTITUDE gap recorded with its origin; a range the service does not have,
or no attitude source at all, is a clear BAD_INPUT naming the service and the range.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from mxt_pipeline.attitude.server import AttitudeServiceThread
from mxt_pipeline.cli.main import main
from mxt_pipeline.datamodel import Attitude
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io.products import read_attitude, write_attitude
from mxt_pipeline.pipelines.attitude_source import DEFAULT_MAX_GAP_S, observation_span
from mxt_pipeline.pipelines.bricks.calibrate import CALIBRATE
from mxt_pipeline.pipelines.execute import RECORDS_DIR, SERVICE_INPUTS_DIR, execute
from mxt_pipeline.pipelines.pipeline import Pipeline
from mxt_pipeline.pipelines.runtime import (
    ObservationInputs,
    load_runtime_data,
    request_from_dataset,
)
from mxt_pipeline.pipelines.status import ProcessingStatus, read_status
from mxt_pipeline.pipelines.xband_gp import EXTERNAL_INPUTS

from .xband_data import OBS_ID, T0, make_dataset

TOKEN = "att-run-1f9e3c55-MXT-secret"
DURATION = 300.0


def _calibrate_only() -> Pipeline:
    """XBAND-GP cut after ``calibrate``: the L2 events without the cost of detection."""
    return Pipeline("xband-gp", [CALIBRATE], external=EXTERNAL_INPUTS, summary="calibrate only")


def _without_att(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    manifest = json.loads((dest / "dataset.json").read_text())
    (dest / manifest["files"]["att"]).unlink()
    manifest["files"]["att"] = None
    (dest / "dataset.json").write_text(json.dumps(manifest))
    return dest


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("att_run")
    with_att = root / "with_att"
    make_dataset(with_att, duration=DURATION, n_source=300, n_background=100)
    no_att = _without_att(with_att, root / "no_att")
    archive = root / "archive"
    archive.mkdir()
    shutil.copy(with_att / "aux" / f"mxt_att_{OBS_ID}.fits", archive / "att_full.fits")
    with pytest.MonkeyPatch.context() as mp, AttitudeServiceThread(archive, [TOKEN]) as svc:
        mp.setenv("MXT_TOKEN", TOKEN)
        mp.delenv("MXT_ATTITUDE_URL", raising=False)
        yield {"root": root, "with_att": with_att, "no_att": no_att, "svc": svc}


def _l2(collection: Path) -> fits.HDUList:
    return fits.open(collection / f"mxt_l2_evt_{OBS_ID}.fits")


def test_mxt_run_with_the_service_gives_the_events_of_the_att_file(setup):
    root, svc = setup["root"], setup["svc"]
    out_svc = root / "out_svc"
    code = main(["run", str(setup["no_att"]), "--pipeline", "xband-gp", "--out", str(out_svc), "--no-progress",
                 "--attitude-url", svc.url])  # fmt: skip
    st = read_status(out_svc)
    assert code == 0 and st.status is ProcessingStatus.SUCCESS, st.reason
    ref = execute(request_from_dataset(setup["with_att"], "xband-gp", root / "out_ref"), pipeline=_calibrate_only())
    assert ref.exit_code == 0, ref.status.reason
    coll = out_svc / st.collection
    with _l2(coll) as got, _l2(ref.collection) as want:
        assert len(got["EVENTS"].data) > 300
        for hdu in ("EVENTS", "GTI", "GAPS"):
            assert got[hdu].columns.names == want[hdu].columns.names
            for col in want[hdu].columns.names:
                np.testing.assert_array_equal(got[hdu].data[col], want[hdu].data[col], err_msg=f"{hdu}.{col}")
        for key in ("TSTART", "TSTOP", "ONTIME", "EXPOSURE", "RA_NOM", "DEC_NOM"):
            assert got["EVENTS"].header[key] == want["EVENTS"].header[key], key
    # The attitude used is an input of the run, named with its service and archive file.
    manifest = json.loads((coll / "manifest.json").read_text())
    att = [r for r in manifest["inputs"] if r["port"] == "att"]
    assert len(att) == 1 and att[0]["service"] == svc.url and att[0]["sources"] == ["att_full.fits"]
    assert (att[0]["tstart"], att[0]["tstop"], att[0]["attitude_gaps"]) == (T0, T0 + DURATION, [])
    assert manifest["request"]["services"]["attitude_url"] == svc.url
    kept = list((out_svc / RECORDS_DIR / SERVICE_INPUTS_DIR).glob("mxt_att_*.fits"))
    assert len(kept) == 1 and kept[0].stat().st_size == att[0]["size"]
    assert TOKEN not in json.dumps(manifest) and TOKEN not in (coll / "run_report.json").read_text()


def test_an_archive_hole_becomes_an_attitude_gap_with_its_origin(setup):
    root = setup["root"]
    full = read_attitude(setup["with_att"] / "aux" / f"mxt_att_{OBS_ID}.fits")
    t = np.asarray(full["TIME"])
    archive = root / "archive_hole"
    archive.mkdir()
    for name, sel in (("att_early.fits", t <= T0 + 90.0), ("att_late.fits", t >= T0 + 210.0)):
        write_attitude(archive / name, Attitude(full.table[sel], meta={"OBS_ID": OBS_ID}))
    with AttitudeServiceThread(archive, [TOKEN]) as svc:
        req = request_from_dataset(setup["no_att"], "xband-gp", root / "out_hole", attitude_url=svc.url)
        outcome = execute(req, pipeline=_calibrate_only())
    assert outcome.exit_code == 0, outcome.status.reason
    with _l2(outcome.collection) as l2:
        gaps = l2["GAPS"].data
        att_gaps = [(s, e) for s, e, o in zip(gaps["START"], gaps["STOP"], gaps["ORIGIN"]) if o.strip() == "ATTITUDE"]
        assert att_gaps == [(T0 + 90.0, T0 + 210.0)]
        gti = l2["GTI"].data
        assert not np.any((gti["START"] < T0 + 210.0) & (gti["STOP"] > T0 + 90.0))  # no good time in the hole
        assert not np.any((l2["EVENTS"].data["TIME"] > T0 + 90.0) & (l2["EVENTS"].data["TIME"] < T0 + 210.0))
    report = json.loads((outcome.collection / "run_report.json").read_text())
    rec = next(r for r in report["inputs"] if r["port"] == "att")
    assert rec["attitude_gaps"] == [[T0 + 90.0, T0 + 210.0]] and rec["sources"] == ["att_early.fits", "att_late.fits"]
    assert DEFAULT_MAX_GAP_S == next(p.default for p in CALIBRATE.params if p.name == "max_attitude_gap_s")


def test_attitude_the_service_lacks_is_a_bad_input_naming_service_and_range(setup, tmp_path):
    svc = setup["svc"]
    late = _without_att(setup["with_att"], tmp_path / "late")
    manifest = json.loads((late / "dataset.json").read_text())
    manifest["tstart"], manifest["tstop"] = T0 + 1.0e6, T0 + 1.0e6 + DURATION
    (late / "dataset.json").write_text(json.dumps(manifest))
    out = tmp_path / "out"
    code = main(["run", str(late), "--pipeline", "xband-gp", "--out", str(out), "--no-progress",
                 "--attitude-url", svc.url, "--max-tries", "1"])  # fmt: skip
    st = read_status(out)
    assert code != 0 and st.status is ProcessingStatus.BAD_INPUT and st.collection is None
    message = st.reason["message"]
    assert svc.url in message and f"[{T0 + 1.0e6:.3f}, {T0 + 1.0e6 + DURATION:.3f}]" in message
    assert "the service has none" in message and st.stopped_at == {"phase": "inputs"}


def test_inputs_without_attitude_source_are_refused(setup, tmp_path):
    with pytest.raises(MXTInputError, match="no attitude source: .*--attitude-url") as err:
        request_from_dataset(setup["no_att"], "xband-gp", tmp_path / "out")
    assert err.value.keyword == "services.attitude_url"
    # runtime_data.json: L1 files without 'att', with services.attitude_url.
    l1 = sorted(str(p) for p in (setup["no_att"] / "l1").glob("*.fits"))
    doc = {"pipeline": "xband-gp", "target": {"obs_id": OBS_ID, "mode": "XBAND-GP"},
           "inputs": {"l1": l1, "saa_dir": str(setup["no_att"] / "saa"), "tstart": T0, "tstop": T0 + DURATION},
           "output_dir": "out", "services": {"attitude_url": "http://att.fsc:8510"}}  # fmt: skip
    path = tmp_path / "runtime_data.json"
    path.write_text(json.dumps(doc))
    req = load_runtime_data(path)
    assert req.inputs.att is None and req.attitude_url == "http://att.fsc:8510"
    assert req.describe()["services"]["attitude_url"] == "http://att.fsc:8510"
    del doc["services"]
    path.write_text(json.dumps(doc))
    with pytest.raises(MXTInputError, match="no attitude source") as err:
        load_runtime_data(path)
    assert err.value.file == str(path)


def test_the_calibrate_command_alone_names_the_missing_att_file(setup, tmp_path, capsys):
    rc = main(["calibrate", str(setup["no_att"]), "--out", str(tmp_path / "l2.fits")])
    err = capsys.readouterr().err
    assert rc == 2 and "the dataset holds no ATT file" in err and "--attitude-url" in err and "Traceback" not in err
    assert not (tmp_path / "l2.fits").exists()


def test_the_span_asked_for_is_the_manifest_s_else_the_passes_coverage(setup):
    no_att = setup["no_att"]
    assert observation_span(ObservationInputs.from_dataset(no_att)) == (T0, T0 + DURATION)
    l1 = sorted((no_att / "l1").glob("*.fits"))
    bare = ObservationInputs.from_files(l1, None, obs_id=OBS_ID)
    assert bare.att is None and "attitude" not in bare.port_files()
    assert observation_span(bare) == (T0, T0 + DURATION)  # the two passes' GTIs end to end
    one = ObservationInputs.from_files(l1[:1], None, obs_id=OBS_ID, tstart=T0 - 50.0)
    t0, t1 = observation_span(one)
    assert t0 == T0 - 50.0 and T0 < t1 < T0 + DURATION
