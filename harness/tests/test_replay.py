"""Replay on a toy golden dataset: clean code passes; broken variants fail with a message
naming the brick and the quantity; the regression run reports missing golden data."""

from __future__ import annotations

import numpy as np
import pytest

from harness import broken
from harness.golden import GoldenStore
from harness.replay import GoldenRun, generate_expected, replay_dataset
from harness.results import Status
from harness.run import RunOptions, run_regression

from . import toy


def _generator(name, spec, folder):
    toy.write_dataset(folder / "input", seed=int(spec["seed"]))
    statuses = generate_expected(folder / "input", GoldenRun.from_definition(spec), folder / "expected")
    return {"statuses": statuses}


@pytest.fixture(scope="module")
def toy_golden(tmp_path_factory, config):
    """A blessed toy golden dataset (made once for the module)."""
    mp = pytest.MonkeyPatch()
    toy.register(mp)
    root = tmp_path_factory.mktemp("golden-toy")
    from harness.config import from_mapping

    cfg = from_mapping({**config.raw, "golden": {"required": True, "max_total_mb": 30,
                                                  "sets": {"toy": {"pipeline": "toy", "seed": 4}}}})  # fmt: skip
    store = GoldenStore(root / "golden", root / "cand", config=cfg)
    store.make_candidate("toy", _generator)
    store.bless("toy", "toy golden dataset for the replay tests", user="tests")
    yield store, cfg
    mp.undo()


@pytest.fixture
def registered(monkeypatch):
    toy.register(monkeypatch)


def test_clean_replay_passes(toy_golden, registered, tmp_path):
    store, cfg = toy_golden
    checks, outputs = replay_dataset(store.path("toy"), cfg, tmp_path)
    assert [c.status for c in checks] == [Status.PASS] * 4, [c.line() for c in checks]
    assert [c.name for c in checks] == ["toy/merge", "toy/spectrum", "toy/preview", "toy/toy"]
    assert set(outputs) == {"toy/merge", "toy/spectrum", "toy/preview", "toy/toy"}
    assert checks[0].figures["values_compared"] > 1000


def _no_sort(time):
    return np.arange(len(time))


def _wrong_band():
    return (100, 3000)


TOY_VARIANTS = [
    broken.BrokenVariant("time sort removed", "merge", "TIME", "toy",
                         lambda mp: mp.setattr(toy, "sort_hits", _no_sort)),
    broken.BrokenVariant("wrong PHA band", "spectrum", "band", "toy",
                         lambda mp: mp.setattr(toy, "BAND", _wrong_band())),
    broken.BrokenVariant("duplicated frames kept", "merge", "rows", "toy",
                         lambda mp: mp.setattr(np, "unique", _unique_keeping_all)),
]  # fmt: skip

_np_unique = np.unique


def _unique_keeping_all(ar, *args, **kwargs):
    out = _np_unique(ar, *args, **kwargs)
    if kwargs.get("axis") == 0 and kwargs.get("return_index"):
        return out[0], np.arange(len(ar))
    return out


@pytest.mark.parametrize("variant", TOY_VARIANTS, ids=lambda v: v.name)
def test_broken_toy_variants_are_caught(variant, toy_golden, registered, monkeypatch, tmp_path):
    store, cfg = toy_golden
    variant.apply(monkeypatch)
    ok, checks = broken.verdict(variant, store.path("toy"), cfg, tmp_path, pipeline=True)
    assert ok, "not caught as described: " + " / ".join(c.line() for c in checks)
    # The end-to-end replay fails too.
    assert any(c.section == "pipeline" and c.status == Status.FAIL for c in checks)


def test_regression_run_on_toy_golden(toy_golden, registered, tmp_path):
    store, cfg = toy_golden
    opts = RunOptions(config=cfg, reports_dir=tmp_path / "reports", golden_root=store.root, record=False,
                      skip={"ensemble", "timing", "coverage"})  # fmt: skip
    s = run_regression(opts)
    assert s.ok, [c.line() for c in s.failures()]
    sections = {c.section for c in s.checks}
    assert {"golden", "replay", "pipeline", "schema", "fitsverify", "localization"} <= sections | {"fitsverify"}
    assert (tmp_path / "reports" / "regression.html").exists()
    # A hand edit of a golden file fails the run and stops the replay of that set.
    f = store.path("toy") / "expected" / "spectrum" / "toy_spec_00000777.json"
    original = f.read_text()
    try:
        f.write_text(original.replace('"band"', '"band" ', 1))
        s2 = run_regression(opts)
        assert not s2.ok
        assert [c.name for c in s2.failures()] == ["toy"] and "SHA-256" in s2.failures()[0].message
        assert not any(c.section == "replay" for c in s2.checks)
    finally:
        f.write_text(original)


def test_timing_step_on_toy_golden(toy_golden, tmp_path, monkeypatch):
    """pytest-benchmark of the toy bricks; a baseline is recorded, then a slowdown fails."""
    import json

    from harness.run import timing_step

    store, cfg = toy_golden
    monkeypatch.setenv("MXT_HARNESS_EXTRA_PIPELINES", "toy=harness.tests.toy:build_pipeline")
    cfg = cfg.with_overrides(timing={"rounds": 2, "warmup": 0, "datasets": ["toy"]})
    opts = RunOptions(config=cfg, reports_dir=tmp_path / "reports", golden_root=store.root, record=True)
    checks, plot = timing_step(["toy"], opts, tmp_path / "w1", "abc")
    assert [c.status for c in checks] == [Status.PASS] * 3, [c.line() for c in checks]
    assert {c.name for c in checks} == {"toy/merge", "toy/spectrum", "benchmarks"}
    base_path = tmp_path / "reports" / "benchmarks" / "baseline.json"
    base = json.loads(base_path.read_text())
    assert set(base["bricks"]) == {"toy/merge", "toy/spectrum"}
    assert plot is not None and plot.exists()
    # The figures pytest-benchmark stored, against a baseline twice as fast: a 100 % slowdown.
    from harness import timing

    samples = timing.read_benchmark_json(tmp_path / "reports" / "benchmarks" / "latest.json")
    assert {s.name for s in samples} == {"toy/merge", "toy/spectrum"}
    half = {"calibration_version": base["calibration_version"],
            "bricks": {k: {"normalised": v["normalised"] / 2.0} for k, v in base["bricks"].items()}}  # fmt: skip
    verdicts, _ = timing.compare_with_baseline(samples, half, max_slowdown=0.25)
    assert not any(v.ok for v in verdicts)
    assert all(v.slowdown == pytest.approx(1.0, rel=0.5) for v in verdicts)


def test_run_without_golden_reports_missing(tmp_path, config):
    opts = RunOptions(config=config, reports_dir=tmp_path / "r", golden_root=tmp_path / "none", record=False,
                      skip={"ensemble", "coverage"}, require_golden=False)  # fmt: skip
    s = run_regression(opts)
    missing = [c for c in s.checks if c.status == Status.MISSING]
    assert {c.name for c in missing} >= set(config.golden["sets"]) | {"bricks"}
    assert s.ok
    opts.require_golden = True
    assert not run_regression(opts).ok
    md = (tmp_path / "r" / "regression.md").read_text()
    assert "MISSING golden/grb_bright" in md


def _toy_without_spectrum():
    p = toy.build_pipeline()
    from mxt_pipeline.pipelines import Pipeline

    return Pipeline("toy", [b for b in p.bricks if b.name not in ("spectrum", "preview")],
                    external=("observation", "target", "l1_passes", "attitude", "angles"))  # fmt: skip


def test_missing_brick_is_a_clear_failure(toy_golden, registered, tmp_path, monkeypatch):
    """A task removed from the pipeline: its replay fails, naming it; the others still run."""
    from mxt_pipeline.pipelines import registry

    store, cfg = toy_golden
    monkeypatch.setitem(registry.PIPELINES, "toy", f"{__name__}:_toy_without_spectrum")
    checks, _ = replay_dataset(store.path("toy"), cfg, tmp_path, pipeline=False)
    by_name = {c.name: c for c in checks}
    assert "toy/spectrum" in by_name, [c.line() for c in checks]
    for brick in ("spectrum", "preview"):
        gone = by_name[f"toy/{brick}"]
        assert gone.status == Status.FAIL and f"brick {brick}: missing from pipeline toy" in gone.message
    assert by_name["toy/merge"].status == Status.PASS


@pytest.mark.parametrize("target", ["harness.tests.no_such_module:build_pipeline", "harness.tests.toy:no_such_function"])
def test_pipeline_that_cannot_be_built_fails_the_run_without_crashing(toy_golden, registered, tmp_path, monkeypatch, target):
    from mxt_pipeline.pipelines import registry

    store, cfg = toy_golden
    monkeypatch.setitem(registry.PIPELINES, "toy", target)
    opts = RunOptions(config=cfg, reports_dir=tmp_path / "reports", golden_root=store.root, record=False,
                      skip={"ensemble", "timing", "coverage"})  # fmt: skip
    s = run_regression(opts)
    assert not s.ok
    fails = [c for c in s.failures() if c.section in ("replay", "pipeline")]
    assert fails and all("pipeline toy could not be built" in c.message for c in fails), [c.line() for c in fails]
    assert (tmp_path / "reports" / "regression.json").exists()


def test_crashing_brick_is_reported_with_its_name(toy_golden, registered, tmp_path, monkeypatch):
    """A brick raising an unexpected error: FAIL naming the brick, the run goes on."""

    def boom(time):
        raise ZeroDivisionError("deliberate")

    store, cfg = toy_golden
    monkeypatch.setattr(toy, "sort_hits", boom)
    checks, _ = replay_dataset(store.path("toy"), cfg, tmp_path)
    merge = next(c for c in checks if c.name == "toy/merge")
    assert merge.status == Status.FAIL and "brick merge" in merge.message and "ZeroDivisionError" in merge.message
    assert any(c.section == "pipeline" and c.status == Status.FAIL for c in checks)


def test_differing_quantities_names_every_moved_quantity_once():
    from harness.fitsdiff import Difference, FileDiff
    from harness.replay import differing_quantities

    d = FileDiff("a.fits", "b.fits")
    d.differences += [
        Difference("values", "EVENTS", "ENERGY", ""), Difference("values", "EVENTS", "PI", ""),
        Difference("keyword", "EVENTS", "ONTIME", "1 vs 2"), Difference("rows", "GTI", "", "2 rows vs 1"),
        Difference("keyword", "EVENTS", "ONTIME", "again"), Difference("file", "", "x", "not written"),
    ]  # fmt: skip
    assert differing_quantities(d) == "[EVENTS] ENERGY, PI, ONTIME; [GTI] rows"
    assert differing_quantities(d, limit=2) == "[EVENTS] ENERGY, PI (+2 more)"
    only_files = FileDiff("a", "b")
    only_files.differences.append(Difference("file", "", "a", "not written"))
    assert differing_quantities(only_files) == ""


def test_a_changed_default_fails_naming_the_parameter(toy_golden, registered, monkeypatch, tmp_path):
    """A brick whose declared default changed replays with another effective
    configuration than the golden run: the brick and the pipeline checks fail, naming
    the parameter, even where the outputs would still agree."""
    import dataclasses

    from mxt_pipeline.pipelines import Parameter

    store, cfg = toy_golden
    drifted = dataclasses.replace(toy.SPECTRUM, params=(Parameter("bins", int, 32, "number of bins", minimum=1),))
    monkeypatch.setattr(toy, "SPECTRUM", drifted)
    checks, _ = replay_dataset(store.path("toy"), cfg, tmp_path)
    by_name = {c.name: c for c in checks}
    assert by_name["toy/merge"].status is Status.PASS
    for name in ("toy/spectrum", "toy/toy"):
        assert by_name[name].status is Status.FAIL
        assert "bins: 32 vs golden 16" in by_name[name].message, by_name[name].message


def test_config_differences_name_parameters_and_files():
    from harness.replay import config_differences

    golden = {"params": {"a": 1, "b": None}, "caldb": {"PSF": {"file": "p1.fits", "sha256": "x"}}}
    assert config_differences(golden, golden) == []
    test = {"params": {"a": 2, "b": None, "c": 3}, "caldb": {"PSF": {"file": "p1.fits", "sha256": "y"}}}
    assert config_differences(test, golden) == [
        "a: 2 vs golden 1", "c: 3 vs golden '<absent>'", "CALDB PSF: p1.fits vs golden p1.fits (same name, other content)"]
    assert config_differences({"detect": test}, {"detect": golden})[0] == "detect.a: 2 vs golden 1"
    assert config_differences({}, {"detect": golden}) == ["detect: brick only in the golden configuration"]
    assert "re-bless" in config_differences(test, None)[0]
