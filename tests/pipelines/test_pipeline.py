"""The pipeline runner: wiring checks, order, per-brick status and timing, failures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mxt_pipeline.pipelines import Brick, BrickStatus, Pipeline, Port, ProcessingStatus, RunContext
from mxt_pipeline.pipelines.ports import json_codec
from mxt_pipeline.pipelines.status import status_of_bricks

from .toybricks import build_toy, make_caldb


def _ctx(tmp_path, obs, caldb, **params):
    ctx = RunContext(out_dir=tmp_path / "stage", naming={"obs_id": "42"}, calibration=caldb, parameters=params)
    ctx.values["observation"] = obs
    return ctx


def test_wiring_is_checked_at_construction():
    toy = build_toy()
    with pytest.raises(ValueError, match="needs 'samples'"):
        Pipeline("bad", toy.bricks[1:], external=("observation",))
    with pytest.raises(ValueError, match="produced by both"):
        Pipeline("bad", [toy.bricks[0], dataclasses.replace(toy.bricks[0], name="again")],
                 external=("observation",))  # fmt: skip
    with pytest.raises(ValueError, match="duplicate brick"):
        Pipeline("bad", [toy.bricks[0], toy.bricks[0]], external=("observation",))
    assert toy.caldb_codes == ["GAIN"]


def test_run_in_order_with_status_and_timing(tmp_path, toy, toy_obs, toy_caldb):
    ctx = _ctx(tmp_path, toy_obs, toy_caldb)
    res = toy.run(ctx)
    assert [b.name for b in res.bricks] == ["merge", "histogram", "density", "summary"]
    assert all(b.status is BrickStatus.SUCCESS for b in res.bricks)
    assert status_of_bricks(res.bricks) is ProcessingStatus.SUCCESS
    assert all(b.elapsed_s > 0 for b in res.bricks)
    assert res.elapsed_s >= sum(b.elapsed_s for b in res.bricks)
    # End to end the numbers are those of numpy on the merged passes.
    x = np.sort(np.concatenate([np.load(p) for p in toy_obs.l1]))
    np.testing.assert_array_equal(ctx.values["samples"], x)
    counts, edges = np.histogram(x, bins=8, range=(0.0, 10.0))
    np.testing.assert_array_equal(ctx.values["histogram"]["counts"], counts)
    dens = ctx.values["density"]["density"]
    assert np.sum(dens * np.diff(edges)) == pytest.approx(1.0)
    assert "integral: 1" in ctx.values["summary"]


def test_critical_failure_stops_and_skips(tmp_path, toy, toy_obs, toy_caldb):
    ctx = _ctx(tmp_path, toy_obs, toy_caldb, merge={"fail_with": "pass 2 is inconsistent"})
    res = toy.run(ctx)
    assert [b.status for b in res.bricks] == [BrickStatus.FAILED] + [BrickStatus.SKIPPED] * 3
    assert res.failed.name == "merge" and res.failed.error.phase == "core"
    assert res.failed.error.file == str(toy_obs.l1[0])
    assert status_of_bricks(res.bricks) is ProcessingStatus.BAD_INPUT


def test_non_critical_failure_makes_the_run_partial(tmp_path, toy, toy_obs, toy_caldb):
    ctx = _ctx(tmp_path, toy_obs, toy_caldb, summary={"fail": True})
    res = toy.run(ctx)
    assert [b.status for b in res.bricks][-1] is BrickStatus.FAILED
    assert res.failed is None
    assert status_of_bricks(res.bricks) is ProcessingStatus.PARTIAL
    assert res.bricks[-1].error.traceback  # an unexpected exception keeps its traceback


def test_bricks_downstream_of_a_failed_optional_brick_are_skipped(tmp_path):
    def fail(i, p, c):
        raise RuntimeError("boom")

    a = Brick("a", "a", fail, outputs=(Port("x", json_codec("x.json"), "x"),), critical=False)
    b = Brick("b", "b", lambda i, p, c: {"y": {"v": i["x"]}}, inputs=(Port("x", json_codec("x.json"), "x"),),
              outputs=(Port("y", json_codec("y.json"), "y"),))  # fmt: skip
    res = Pipeline("p", [a, b]).run(RunContext(out_dir=tmp_path))
    assert [r.status for r in res.bricks] == [BrickStatus.FAILED, BrickStatus.SKIPPED]
    assert "brick a failed" in res.bricks[1].warnings[0]
    assert status_of_bricks(res.bricks) is ProcessingStatus.PARTIAL


def test_no_data_propagates(tmp_path, toy):
    from .toybricks import make_observation

    obs = make_observation(tmp_path / "empty", empty=True)
    res = toy.run(_ctx(tmp_path, obs, make_caldb(tmp_path / "c")))
    assert res.bricks[0].status is BrickStatus.NO_DATA
    assert status_of_bricks(res.bricks) is ProcessingStatus.NO_DATA


def test_check_parameters(toy):
    eff = toy.check_parameters({"histogram": {"bins": "16"}})
    assert eff["histogram"] == {"bins": 16, "lo": 0.0, "hi": 10.0}
    from mxt_pipeline.errors import MXTInputError

    with pytest.raises(MXTInputError, match="unknown brick"):
        toy.check_parameters({"histgram": {"bins": 3}})
    with pytest.raises(MXTInputError, match="bins"):
        toy.check_parameters({"histogram": {"bins": -3}})


def test_progress_bar_names_bricks(tmp_path, toy, toy_obs, toy_caldb, capsys):
    toy.run(_ctx(tmp_path, toy_obs, toy_caldb), progress=True)
    err = capsys.readouterr().err
    assert "toy" in err and "4/4" in err


def test_resumable_prefix_stops_at_memory_outputs(tmp_path, toy, toy_obs, toy_caldb):
    res = toy.run(_ctx(tmp_path, toy_obs, toy_caldb))
    done = {b.name: b for b in res.bricks}
    assert toy.resumable_prefix(done) == ["merge", "histogram", "density", "summary"]
    del done["histogram"]
    assert toy.resumable_prefix(done) == ["merge"]
