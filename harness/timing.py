"""Timing trend: each brick's time on golden data, normalised by a calibration workload.

Saved timings drift by 5-40 % between runs of identical code on shared virtual machines
(see docs/harness.md), so absolute seconds are never compared.  Each brick is timed
*interleaved* with a fixed calibration workload in the same process: round ``i`` times
the workload, the brick, and the workload again, with the garbage collector off; the
round's ratio is ``t_brick / mean(t_cal before, t_cal after)`` and the brick's
*normalised time* is the median of the ratios.  A machine twice as slow makes both
twice as slow, and the ratio does not move.

The calibration workload mixes what the bricks spend their time on: sorting and
searching arrays, histogramming, an FFT, interpreted Python, and building + serialising
a FITS binary table in memory.  It is fixed: changing it invalidates every baseline
(its version is stored with them and a mismatch is reported).

Baselines live in ``reports/benchmarks/baseline.json`` (normalised time per brick); a
normalised slowdown above ``timing.max_slowdown`` (25 %) fails.  A brick without a
baseline gets one recorded (that is a first measurement, not a regeneration); updating
an existing baseline is explicit (``python -m harness timing --update-baseline``).
Every run appends to ``reports/benchmarks/history.csv``; :func:`plot_trend` draws it.

The measurement runs under pytest-benchmark (``harness/benchmarks/``), which stores the
normalised figures in ``extra_info``; :func:`run_pytest_benchmark` launches it and
:func:`read_benchmark_json` reads the figures back.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness.history import read_history, save_trend, trend_axes
from mxt_pipeline.pipelines.ports import write_json

__all__ = [
    "CALIBRATION_VERSION",
    "calibration_workload",
    "TimingSample",
    "measure_interleaved",
    "TimingVerdict",
    "compare_with_baseline",
    "load_baseline",
    "save_baseline",
    "append_history",
    "best_of",
    "read_history",
    "plot_trend",
    "run_pytest_benchmark",
    "read_benchmark_json",
]

#: Bumped whenever :func:`calibration_workload` changes (baselines become invalid).
CALIBRATION_VERSION = 1

_RNG = np.random.default_rng(20240611)
_X = _RNG.random(120_000)
_Y = _RNG.random(120_000)


def calibration_workload() -> float:
    """The fixed reference work (about 30-40 ms on one core of a 2020s machine).

    Returns a number derived from every part so that nothing can be skipped.
    """
    from astropy.io import fits  # local: keep module import light

    s = np.sort(_X)
    idx = np.searchsorted(s, _Y[:30_000])
    h, _, _ = np.histogram2d(_X[:40_000], _Y[:40_000], bins=128)
    f = np.abs(np.fft.rfft(_X[:65536]))
    acc = 0
    for i in range(30_000):  # interpreted Python, as in the bricks' bookkeeping
        acc += i % 7
    cols = [
        fits.Column(name="TIME", format="D", array=_X[:20_000]),
        fits.Column(name="PI", format="J", array=idx[:20_000].astype(np.int32)),
    ]
    buf = io.BytesIO()
    fits.BinTableHDU.from_columns(cols).writeto(buf)
    return float(s[-1] + idx[0] + h.sum() + f[1] + acc + len(buf.getvalue()))


@dataclass
class TimingSample:
    """Interleaved measurement of one workload against the calibration workload."""

    name: str
    times_s: list[float]
    calibration_s: list[float]
    ratios: list[float]

    @property
    def normalised(self) -> float:
        """Median over rounds of (workload time / calibration time)."""
        return float(statistics.median(self.ratios))

    @property
    def median_s(self) -> float:
        return float(statistics.median(self.times_s))

    @property
    def calibration_median_s(self) -> float:
        return float(statistics.median(self.calibration_s))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "normalised": self.normalised,
            "median_s": self.median_s,
            "calibration_median_s": self.calibration_median_s,
            "ratios": self.ratios,
            "times_s": self.times_s,
            "calibration_s": self.calibration_s,
            "calibration_version": CALIBRATION_VERSION,
        }


def _timed(fn: Callable[[], Any], clock: Callable[[], float] = time.perf_counter) -> float:
    t0 = clock()
    fn()
    return clock() - t0


def measure_interleaved(
    name: str,
    fn: Callable[[], Any],
    *,
    rounds: int = 5,
    warmup: int = 1,
    calibration: Callable[[], Any] = calibration_workload,
    clock: Callable[[], float] = time.perf_counter,
) -> TimingSample:
    """Time ``fn`` interleaved with the calibration workload.

    Parameters
    ----------
    name : str
        Label of the workload (the brick).
    fn : callable
        The workload; called ``warmup + rounds`` times.
    rounds : int
        Measured rounds (the median is robust to one or two disturbed rounds).
    warmup : int
        Unmeasured rounds first (imports, caches, numba compilation).
    calibration : callable
        The reference workload.
    clock : callable
        Monotonic clock in seconds (tests substitute a simulated one).

    Returns
    -------
    TimingSample
    """
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    for _ in range(warmup):
        calibration()
        fn()
    times, cals, ratios = [], [], []
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        before = _timed(calibration, clock)
        for _ in range(rounds):
            t = _timed(fn, clock)
            after = _timed(calibration, clock)
            cal = 0.5 * (before + after)
            times.append(t)
            cals.append(cal)
            ratios.append(t / cal)
            before = after
    finally:
        if enabled:
            gc.enable()
    return TimingSample(name, times, cals, ratios)


# --------------------------------------------------------------------------------------
# Baselines and verdicts
# --------------------------------------------------------------------------------------


def load_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The baseline document (empty structure when absent)."""
    p = Path(path)
    if not p.exists():
        return {"calibration_version": CALIBRATION_VERSION, "bricks": {}}
    doc = json.loads(p.read_text(encoding="utf-8"))
    doc.setdefault("bricks", {})
    return doc


def save_baseline(path: str | os.PathLike[str], doc: dict[str, Any]) -> None:
    write_json(path, doc)


@dataclass
class TimingVerdict:
    """Comparison of one brick's normalised time with its baseline."""

    name: str
    normalised: float
    baseline: float | None
    max_slowdown: float
    recorded_baseline: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def slowdown(self) -> float | None:
        """Relative change of the normalised time (+0.30 = 30 % slower)."""
        if self.baseline is None or self.baseline <= 0:
            return None
        return self.normalised / self.baseline - 1.0

    @property
    def ok(self) -> bool:
        s = self.slowdown
        return s is None or s <= self.max_slowdown

    def message(self) -> str:
        if self.baseline is None:
            return f"{self.name}: normalised time {self.normalised:.3f} (no baseline; recorded as the baseline)"
        s = self.slowdown or 0.0
        verdict = "slower" if s > 0 else "faster"
        text = (
            f"{self.name}: normalised time {self.normalised:.3f} vs baseline {self.baseline:.3f} "
            f"({abs(s):.1%} {verdict}; at most {self.max_slowdown:.0%} slower allowed)"
        )
        return text + ("" if self.ok else " -> timing regression")


def compare_with_baseline(
    samples: list[TimingSample],
    baseline: dict[str, Any],
    *,
    max_slowdown: float = 0.25,
    update: bool = False,
    meta: dict[str, Any] | None = None,
) -> tuple[list[TimingVerdict], dict[str, Any]]:
    """Verdicts per brick, and the baseline document to save.

    Bricks without a baseline get this run's figure recorded; ``update=True`` replaces
    every baseline with this run's figures (the explicit, reviewed update). A baseline
    measured with another calibration workload version is not comparable: it is
    reported and replaced only on ``update``.
    """
    doc = {"calibration_version": baseline.get("calibration_version", CALIBRATION_VERSION),
           "bricks": dict(baseline.get("bricks", {}))}  # fmt: skip
    stale = doc["calibration_version"] != CALIBRATION_VERSION
    if stale and update:
        doc = {"calibration_version": CALIBRATION_VERSION, "bricks": {}}
    verdicts = []
    for s in samples:
        entry = doc["bricks"].get(s.name)
        base = None if entry is None or stale else float(entry["normalised"])
        v = TimingVerdict(s.name, s.normalised, base, max_slowdown)
        if stale and entry is not None and not update:
            v.notes.append("baseline measured with another calibration workload: not compared")
        if entry is None or update:
            doc["bricks"][s.name] = {"normalised": s.normalised, **(meta or {})}
            v.recorded_baseline = True
        verdicts.append(v)
    return verdicts, doc


# --------------------------------------------------------------------------------------
# History and plot
# --------------------------------------------------------------------------------------

_HISTORY_FIELDS = ("commit", "date", "brick", "normalised", "median_s", "calibration_median_s", "rounds")


def best_of(first: list[TimingSample], second: list[TimingSample]) -> list[TimingSample]:
    """Each brick's faster measurement of two (by normalised time), in ``first``'s order.

    Used to confirm a slowdown: noise on a shared machine only slows a measurement down,
    so a regression must show in both.
    """
    again = {s.name: s for s in second}
    return [min((s, again.get(s.name, s)), key=lambda x: x.normalised) for s in first]


def append_history(path: str | os.PathLike[str], samples: list[TimingSample], *, commit: str, date: str | None = None) -> None:
    """Append one row per brick to the timing history CSV."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    date = date or datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    new = not p.exists() or p.stat().st_size == 0
    with open(p, "a", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=_HISTORY_FIELDS)
        if new:
            w.writeheader()
        for s in samples:
            w.writerow({
                "commit": commit, "date": date, "brick": s.name,
                "normalised": f"{s.normalised:.5f}", "median_s": f"{s.median_s:.5f}",
                "calibration_median_s": f"{s.calibration_median_s:.5f}", "rounds": len(s.ratios),
            })  # fmt: skip


def plot_trend(history: list[dict[str, str]], path: str | os.PathLike[str], baseline: dict[str, Any] | None = None) -> Path | None:
    """Normalised time per brick over the runs, baselines dotted."""
    if not history:
        return None
    fig, ax, runs, index = trend_axes(history)
    bricks = sorted({r["brick"] for r in history})
    for b in bricks:
        pts = [(index[(r["date"], r["commit"])], float(r["normalised"])) for r in history if r["brick"] == b]
        xs, ys = zip(*pts)
        line = ax.plot(xs, ys, marker="o", ms=3, label=b)[0]
        if baseline and b in baseline.get("bricks", {}):
            ax.axhline(float(baseline["bricks"][b]["normalised"]), color=line.get_color(), ls=":", lw=1)
    ax.set_yscale("log")
    return save_trend(fig, ax, runs, path, "time / calibration workload", fontsize=6, loc="upper left", ncol=2)


# --------------------------------------------------------------------------------------
# pytest-benchmark
# --------------------------------------------------------------------------------------


def run_pytest_benchmark(json_out: str | os.PathLike[str], *, extra_env: dict[str, str] | None = None, timeout_s: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run the brick benchmarks (``harness/benchmarks``) under pytest-benchmark.

    The benchmarks write their :class:`TimingSample` figures into ``extra_info``;
    ``json_out`` receives pytest-benchmark's JSON report.
    """
    bench_dir = Path(__file__).resolve().parent / "benchmarks"
    cmd = [
        sys.executable, "-m", "pytest", str(bench_dir), "-q", "-p", "no:cacheprovider",
        "--benchmark-enable", "--benchmark-only", f"--benchmark-json={json_out}",
        "-o", "addopts=", "--rootdir", str(bench_dir.parent.parent),
    ]  # fmt: skip
    # A session of its own: run from a pytest-xdist worker (the harness's tests under
    # tox -e cov), the worker's PYTEST_XDIST_* variables would make pytest-benchmark
    # believe xdist is on and refuse --benchmark-only.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env.update(extra_env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s, check=False)


def read_benchmark_json(path: str | os.PathLike[str]) -> list[TimingSample]:
    """The :class:`TimingSample` of every benchmark in a pytest-benchmark JSON report."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for b in doc.get("benchmarks", []):
        info = b.get("extra_info", {})
        if "ratios" not in info:
            continue
        out.append(TimingSample(info.get("name", b["name"]), list(info["times_s"]), list(info["calibration_s"]), list(info["ratios"])))
    return out
