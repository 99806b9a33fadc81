"""Timing normalisation: machine speed cancels, slowdowns beyond 25 % fail."""

from __future__ import annotations

import json

import pytest

from harness import timing as tm


class SimulatedMachine:
    """A clock and workloads whose durations are known: ``speed`` scales them all,
    ``jitter`` slows every seventh call (a noisy neighbour)."""

    def __init__(self, speed: float, jitter: float = 0.0):
        self.now = 0.0
        self.speed = speed
        self.jitter = jitter
        self.calls = 0

    def clock(self) -> float:
        return self.now

    def work(self, seconds: float):
        def fn():
            self.calls += 1
            noise = self.jitter if self.calls % 7 == 0 else 0.0
            self.now += seconds * self.speed * (1.0 + noise)

        return fn


@pytest.mark.parametrize("speed", [0.5, 1.0, 3.7])
def test_machine_speed_cancels(speed):
    m = SimulatedMachine(speed, jitter=0.4)
    s = tm.measure_interleaved("brick", m.work(0.2), rounds=7, calibration=m.work(0.05), clock=m.clock)
    assert max(s.ratios) > 4.5 and min(s.ratios) < 3.5  # some rounds were disturbed...
    assert s.normalised == pytest.approx(4.0, rel=1e-9)  # ...and the median ignores them
    assert s.median_s == pytest.approx(0.2 * speed, rel=0.05)


@pytest.mark.timing  # a ratio of wall times: run serially under tox (tests/conftest.py)
def test_real_workload_ratio():
    """Twice the calibration workload measures about twice (generous: shared machine)."""
    s = tm.measure_interleaved("double", lambda: (tm.calibration_workload(), tm.calibration_workload()), rounds=3)
    assert 1.3 < s.normalised < 3.0


def test_baseline_verdicts():
    base = {"calibration_version": tm.CALIBRATION_VERSION, "bricks": {"a": {"normalised": 2.0}, "b": {"normalised": 2.0}}}
    samples = [tm.TimingSample("a", [1], [1], [2.6]), tm.TimingSample("b", [1], [1], [2.4]), tm.TimingSample("c", [1], [1], [5.0])]
    verdicts, doc = tm.compare_with_baseline(samples, base, max_slowdown=0.25)
    by = {v.name: v for v in verdicts}
    assert not by["a"].ok and by["a"].slowdown == pytest.approx(0.3)
    assert "30.0% slower" in by["a"].message() and "timing regression" in by["a"].message()
    assert by["b"].ok and by["b"].slowdown == pytest.approx(0.2)
    assert by["c"].ok and by["c"].recorded_baseline and doc["bricks"]["c"]["normalised"] == 5.0
    assert doc["bricks"]["a"]["normalised"] == 2.0  # a failing run does not move the baseline
    _, updated = tm.compare_with_baseline(samples, base, update=True)
    assert updated["bricks"]["a"]["normalised"] == 2.6


def test_stale_calibration_version_not_compared():
    base = {"calibration_version": tm.CALIBRATION_VERSION - 1, "bricks": {"a": {"normalised": 1.0}}}
    v, doc = tm.compare_with_baseline([tm.TimingSample("a", [1], [1], [9.0])], base)
    assert v[0].ok and v[0].baseline is None and v[0].notes
    assert doc["bricks"]["a"]["normalised"] == 1.0


def test_history_plot_and_benchmark_json(tmp_path):
    s = [tm.TimingSample("g/calibrate", [0.5, 0.6], [0.1, 0.1], [5.0, 6.0])]
    hist = tmp_path / "history.csv"
    tm.append_history(hist, s, commit="abc")
    tm.append_history(hist, s, commit="def")
    rows = tm.read_history(hist)
    assert [r["commit"] for r in rows] == ["abc", "def"] and float(rows[0]["normalised"]) == 5.5
    base = {"bricks": {"g/calibrate": {"normalised": 5.0}}}
    assert tm.plot_trend(rows, tmp_path / "t.png", base).read_bytes()[:4] == b"\x89PNG"
    doc = {"benchmarks": [{"name": "test_x[g/calibrate]", "extra_info": s[0].to_dict()}, {"name": "other", "extra_info": {}}]}
    (tmp_path / "b.json").write_text(json.dumps(doc))
    back = tm.read_benchmark_json(tmp_path / "b.json")
    assert [(b.name, b.normalised) for b in back] == [("g/calibrate", 5.5)]
    tm.save_baseline(tmp_path / "base.json", base)
    assert tm.load_baseline(tmp_path / "base.json")["bricks"] == base["bricks"]
    assert tm.load_baseline(tmp_path / "absent.json")["bricks"] == {}


def test_a_slowdown_must_show_in_both_measurements():
    """The confirmation keeps each brick's faster measurement: a brick slowed down once
    by another job passes, a brick slow in both measurements still fails."""

    def sample(name, ratio):
        return tm.TimingSample(name, [ratio], [1.0], [ratio])

    base = {"calibration_version": tm.CALIBRATION_VERSION, "bricks": {"a": {"normalised": 2.0}, "b": {"normalised": 2.0}}}
    first = [sample("a", 3.0), sample("b", 3.0)]
    second = [sample("a", 2.1), sample("b", 2.9)]
    best = tm.best_of(first, second)
    assert [s.normalised for s in best] == [2.1, 2.9]
    verdicts, _ = tm.compare_with_baseline(best, base, max_slowdown=0.25, update=False, meta={})
    assert [v.ok for v in verdicts] == [True, False]
    assert [s.name for s in tm.best_of(first, [])] == ["a", "b"]  # nothing re-measured: unchanged


def test_benchmark_subprocess_is_not_an_xdist_worker(monkeypatch, tmp_path):
    """From an xdist worker the child pytest must not inherit PYTEST_XDIST_*: with it,
    pytest-benchmark disables itself and refuses --benchmark-only (exit 4)."""
    import subprocess

    seen = {}

    def fake_run(cmd, **kw):
        seen.update(kw["env"])
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    monkeypatch.setattr(tm.subprocess, "run", fake_run)
    tm.run_pytest_benchmark(tmp_path / "b.json", extra_env={"MXT_X": "1"})
    assert not [k for k in seen if k.startswith("PYTEST_XDIST_")] and seen["MXT_X"] == "1"
