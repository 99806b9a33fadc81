"""The telemetry golden dataset holds what it is meant to exercise, and its replay passes.

``golden/telemetry_downlink`` is a telemetry dataset (packet files, no L1, no ATT) made
through a bad downlink.  The replay compares the preprocess brick's L1 passes, ATT and
defect report and calibrate's GAPS and exposure with these expected files, so the
expected files themselves must show every defect, add up, and put every lost interval
in a TELEMETRY gap: otherwise the replay would compare against a golden that checks
nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.config import repo_root
from harness.golden import GoldenStore
from harness.replay import GoldenRun, replay_dataset
from harness.results import Status
from mxt_pipeline.io import read_product
from mxt_pipeline.io.dataset_manifest import is_telemetry_manifest, read_manifest
from mxt_pipeline.io.telemetry_stream import read_packet_file

NAME = "telemetry_downlink"


@pytest.fixture(scope="module")
def golden(config):
    store = GoldenStore(repo_root() / "golden", config=config)
    if NAME not in store.names():
        if config.golden.get("required"):
            pytest.fail(f"golden dataset {NAME} not made yet")
        pytest.skip(f"golden dataset {NAME} not made yet")
    return store.path(NAME)


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_input_is_a_telemetry_dataset(golden):
    m = read_manifest(golden / "input")
    assert is_telemetry_manifest(m)
    assert not (golden / "input" / "l1").exists() and not list((golden / "input").rglob("mxt_att_*.fits"))
    assert len(list((golden / "input" / "telemetry").rglob("mxt_tm_*.dat"))) == len(m["files"]["telemetry"]) >= 2
    run = GoldenRun.from_definition(_json(golden / "MANIFEST.json")["definition"])
    assert run.telemetry is not None and [b.name for b in run.build_pipeline().bricks][0] == "preprocess"


def test_the_defect_report_shows_every_defect_and_adds_up(golden):
    r = _json(golden / "expected" / "preprocess" / "mxt_preprocess_report_GOLD0008.json")
    index = _json(golden / "input" / "telemetry" / "telemetry.json")
    packets = sum(len(read_packet_file(f)) for f in (golden / "input" / "telemetry").rglob("*.dat"))
    assert r["packets_read"] == packets == r["kept"] + r["duplicated"] + r["corrupted"]
    assert r["expected"] == r["kept"] + r["missing"] == index["packets_generated"]
    assert r["corrupted"] == index["injected"]["corrupted"] > 0
    assert r["duplicated"] > 0 and r["missing"] > 0 and r["reordered"] > 0 and r["lost_intervals"]
    # The brick inside the pipeline wrote the same report.
    assert _json(golden / "expected" / "pipeline" / "mxt_preprocess_report_GOLD0008.json") == r


def test_every_lost_interval_is_a_telemetry_gap_and_leaves_the_exposure(golden):
    r = _json(golden / "expected" / "preprocess" / "mxt_preprocess_report_GOLD0008.json")
    m = read_manifest(golden / "input")
    for where in ("calibrate", "pipeline"):
        l2 = read_product(golden / "expected" / where / "mxt_l2_evt_GOLD0008.fits")
        gaps = l2.table("GAPS")
        tel = gaps[gaps["ORIGIN"] == "TELEMETRY"]
        for x in r["lost_intervals"]:
            assert np.any(np.isclose(tel["START"], x["start"], atol=1e-6) & np.isclose(tel["STOP"], x["stop"], atol=1e-6)), x
        # Nothing else is lost in this scenario: the exposure is the span minus the lost time.
        span = m["tstop"] - m["tstart"]
        assert l2.header("EVENTS")["ONTIME"] == pytest.approx(span - r["lost_time_s"], abs=1e-3)
    lc = read_product(next((golden / "expected" / "pipeline").glob("mxt_lc_GOLD0008_src*.fits")))
    assert "TELEMETRY" in set(lc.table("GAPS")["ORIGIN"])


def test_the_golden_statuses_are_degraded_preprocess_and_partial_run(golden):
    assert _json(golden / "expected" / "preprocess" / "OUTPUTS.json")["status"] == "DEGRADED"
    pipe = _json(golden / "expected" / "pipeline" / "OUTPUTS.json")
    assert pipe["status"] == "PARTIAL"
    assert {"l1_passes", "attitude", "telemetry_report"} <= set(pipe["ports"])


def test_the_clean_code_replays_every_brick_and_the_pipeline(golden, config, tmp_path):
    checks, _ = replay_dataset(golden, config, tmp_path)
    names = {c.name for c in checks}
    assert {f"{NAME}/preprocess", f"{NAME}/calibrate", f"{NAME}/xband-gp"} <= names
    assert all(c.status == Status.PASS for c in checks), [c.line() for c in checks if c.status != Status.PASS]
