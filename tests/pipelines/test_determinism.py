"""Two identical runs publish byte-identical collections (under SOURCE_DATE_EPOCH).

Before, the run report, the status copy, the log and the calibration report of a
collection held wall-clock times and durations, so no two runs ever matched.  They now
go to ``run_records/<collection>/`` beside the collection (``timings.json``,
``run.log``), which is not published.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mxt_pipeline.pipelines.execute import RECORDS_DIR, TIMINGS_FILE, execute
from mxt_pipeline.pipelines.run_report import BRICK_CLOCK_FIELDS, CLOCK_FIELDS, split_clock

from .toybricks import build_toy, make_caldb, make_observation, make_request


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def _run(base: Path, inputs: Path, monkeypatch) -> Path:
    """Run on the same input files, into ``base/out`` given as the relative ``out``."""
    monkeypatch.chdir(base)
    obs = make_observation(inputs / "obs")  # rewritten with the same bytes
    caldb = make_caldb(inputs / "caldb", factor=1.0)
    outcome = execute(make_request(obs, Path("out"), caldb), pipeline=build_toy())
    assert outcome.exit_code == 0, outcome.status.reason
    return base / "out" / outcome.collection.name


def test_two_identical_runs_publish_byte_identical_collections(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _run(tmp_path / "a", tmp_path, monkeypatch)
    second = _run(tmp_path / "b", tmp_path, monkeypatch)
    assert first.name == second.name
    assert _tree(first) == _tree(second)
    # ... while the times are kept, unpublished, in the run's record.
    for coll in (first, second):
        record = coll.parent / RECORDS_DIR / coll.name
        clock = json.loads((record / TIMINGS_FILE).read_text())
        assert clock["collection"] == coll.name and clock["timing"]["total_s"] > 0
        assert all(b["elapsed_s"] >= 0 for b in clock["bricks"].values())
        assert (record / "run.log").exists() and not (coll / "run.log").exists()
        manifest = json.loads((coll / "manifest.json").read_text())
        assert not any(f["path"].startswith(RECORDS_DIR) for f in manifest["files"])
        assert manifest["created"] == "2026-01-01T00:00:00Z"


def test_split_clock_moves_every_clock_field():
    report = {"pipeline": "p", "collection": "c", "run_key": "k", "started": "t0", "finished": "t1",
              "timing": {"total_s": 2.0}, "bricks": [{"name": "a", "started": "t", "elapsed_s": 1.0,
                                                      "phase_s": {"core": 1.0}, "status": "SUCCESS"}]}  # fmt: skip
    published, clock = split_clock(report)
    assert not set(CLOCK_FIELDS) & set(published)
    assert not set(BRICK_CLOCK_FIELDS) & set(published["bricks"][0])
    assert published["bricks"][0] == {"name": "a", "status": "SUCCESS"}
    assert clock["bricks"]["a"] == {"started": "t", "elapsed_s": 1.0, "phase_s": {"core": 1.0}}
    assert clock["timing"] == {"total_s": 2.0} and clock["started"] == "t0"


def test_calibration_report_publishes_no_timing():
    from mxt_pipeline.calib.chain import CalibrationReport
    from mxt_pipeline.calib.ingest import IngestReport

    rep = CalibrationReport(ingest=IngestReport(), timing_s={"events": 1.5})
    assert "timing_s" not in rep.to_dict()
    assert rep.to_dict(include_timing=True)["timing_s"] == {"events": 1.5}
