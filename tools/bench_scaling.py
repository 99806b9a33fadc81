"""Scaling curves of the costs users wait for: CPU time against problem size.

    python tools/bench_scaling.py                 # about 2-4 CPU-minutes
    python tools/bench_scaling.py --big           # adds the 1e7 points (calibration, Bayesian blocks)
    python tools/bench_scaling.py --quick         # the smallest sizes only (a smoke run)
    python tools/bench_scaling.py --only blocks --astropy   # one kernel (updates the json), astropy beside

Writes ``reports/benchmarks/scaling.json`` (every point: size, CPU seconds, the size's
unit) and ``reports/benchmarks/scaling.png`` (log-log, one panel per kernel, with
slope-1 guides), so a change in how a cost grows shows as a change of slope, not only
as a change at one size.  Times are process CPU times (``time.process_time``), one
call per point after a warm-up call at the smallest size (compiled kernels, PSF
tables), the BLAS limited to one thread as in the pipeline.

Kernels:

* detection against source counts: three sources (the benchmark's positions, count
  shares 300:200:150) with 1e3 to 1e6 counts in all, both stages and the errors
  (:func:`mxt_pipeline.detect.pipeline.detect_in_problem`);
* detection against the number of sources: 1, 3, 10 and 30 sources of 300 counts each
  on a jittered grid 33-40 pixels apart (a crowded field: the spot is 48 pixels wide);
* calibration against raw hits: the in-memory chain
  (:func:`mxt_pipeline.calib.chain.calibrate_hits`, reconstruction to coordinates) on a
  continuum of 6 photons per frame, 1e4 to 1e6 hits (1e7 with ``--big``);
* Bayesian blocks against events: a Poisson light curve with one step, 1e3 to 1e6
  events (1e7 with ``--big``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The project modules come after the sys.path entry above (the script runs from a checkout).
from mxt_pipeline.acceptance.detection import ValidationSetup, simulate_problem  # noqa: E402
from mxt_pipeline.calib.chain import calibrate_hits  # noqa: E402
from mxt_pipeline.detect.blas import single_blas_thread  # noqa: E402
from mxt_pipeline.detect.pipeline import DetectionParameters, detect_in_problem  # noqa: E402
from mxt_pipeline.lightcurve.bayesian_blocks import bayesian_blocks  # noqa: E402


def _cpu(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def detection_points(counts_sizes, source_sizes) -> dict[str, list]:
    setup = ValidationSetup.from_caldb()
    params = DetectionParameters()
    y3, z3 = np.array([3.0, -40.0, 60.0]), np.array([-1.5, 30.0, -70.0])
    shares = np.array([300.0, 200.0, 150.0]) / 650.0

    def problem_counts(total, seed=1):
        counts = (total * shares)[:, None] * setup.band_fractions[None, :]
        return simulate_problem(setup, y3, z3, counts, np.random.default_rng(seed))

    def problem_sources(n, seed=2):
        rng = np.random.default_rng(seed)
        side = int(np.ceil(np.sqrt(n)))
        g = (np.arange(side) - (side - 1) / 2) * 36.0
        yy, zz = np.meshgrid(g, g)
        y = yy.ravel()[:n] + rng.uniform(-3, 3, n)
        z = zz.ravel()[:n] + rng.uniform(-3, 3, n)
        counts = np.full(n, 300.0)[:, None] * setup.band_fractions[None, :]
        return simulate_problem(setup, y, z, counts, rng)

    detect_in_problem(problem_counts(650.0), params)  # warm-up: kernels, PSF tables
    out: dict[str, list] = {"detection_counts": [], "detection_sources": []}

    def timed(key: str, size: float, prob, label: str) -> None:
        res = None

        def run() -> None:
            nonlocal res
            res = detect_in_problem(prob, params)

        cpu = _cpu(run)
        out[key].append({"size": size, "cpu_s": cpu, "found": int(res.n_sources)})
        print(f"detection, {label}: {cpu:.2f} CPU-s ({res.n_sources} found)", flush=True)

    for total in counts_sizes:
        timed("detection_counts", total, problem_counts(total), f"3 sources, {total:.0e} counts")
    for n in source_sizes:
        timed("detection_sources", n, problem_sources(n), f"{n} sources of 300 counts")
    return out


def calibration_points(hit_sizes) -> list[dict]:
    from tests.calib.conftest import _derive_multiplicity
    from tests.calib.standins import StandInCalibrationSet
    from tests.calib.test_bench_chain import PHOTONS_PER_FRAME, _setup, make_bench_hits

    cs = StandInCalibrationSet()
    cs.multiplicity = _derive_multiplicity(cs)
    small = make_bench_hits(cs, n_photons=2000)
    att, models, kw = _setup(cs, small)
    calibrate_hits(small, att, models, **kw)  # warm-up
    out = []
    for n in hit_sizes:
        # About 2.2 hits per photon with the test charge cloud.
        hits = make_bench_hits(cs, n_photons=int(n / 2.2))
        att, models, kw = _setup(cs, hits)
        cpu = _cpu(lambda hits=hits, att=att, models=models, kw=kw: calibrate_hits(hits, att, models, **kw))
        n_hits = int(hits["TIME"].size)
        out.append({"size": n_hits, "cpu_s": cpu, "photons_per_frame": PHOTONS_PER_FRAME})
        print(f"calibration, {n_hits:.2e} hits: {cpu:.2f} CPU-s ({n_hits / cpu / 1e6:.2f} M hits per CPU-s)", flush=True)
        del hits
    return out


def blocks_points(event_sizes, astropy_up_to: float = 0.0) -> list[dict]:
    rng = np.random.default_rng(5)
    bayesian_blocks(np.sort(rng.uniform(0, 100, 1000)))  # warm-up
    out = []
    for n in (int(v) for v in event_sizes):
        # A rate that doubles halfway through 10 ks.
        t = np.sort(np.r_[rng.uniform(0, 1e4, n // 3), rng.uniform(5e3, 1e4, n - n // 3)])
        edges = None

        def run(t=t):
            nonlocal edges
            edges = bayesian_blocks(t)

        cpu = _cpu(run)
        point = {"size": int(n), "cpu_s": cpu, "blocks": int(len(edges) - 1)}
        extra = ""
        if n <= astropy_up_to:
            # astropy's quadratic programme on the same events, same process.
            from astropy.stats import bayesian_blocks as astropy_blocks

            ref = None

            def run_ref(t=t):
                nonlocal ref
                ref = astropy_blocks(t)

            point["astropy_cpu_s"] = _cpu(run_ref)
            point["same_edges"] = bool(ref.shape == edges.shape and np.allclose(ref, edges))
            extra = f", astropy {point['astropy_cpu_s']:.3f} CPU-s, ratio {point['astropy_cpu_s'] / cpu:.0f}"
        out.append(point)
        print(f"Bayesian blocks, {n:.0e} events: {cpu:.4f} CPU-s ({len(edges) - 1} blocks{extra})", flush=True)
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("detection_counts", "Detection: 3 sources", "source counts (all bands)"),
        ("detection_sources", "Detection: crowded field", "sources of 300 counts"),
        ("calibration_hits", "Calibration chain (in memory)", "raw hits"),
        ("bayesian_blocks", "Bayesian blocks", "events"),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    for ax, (key, title, xlabel) in zip(axes.ravel(), panels):
        pts = results.get(key, [])
        if not pts:
            ax.set_visible(False)
            continue
        x = np.array([p["size"] for p in pts], float)
        y = np.array([p["cpu_s"] for p in pts], float)
        ax.loglog(x, y, "o-", label="measured")
        # Linear growth through the first point: the guide a cost should not outrun.
        ax.loglog(x, y[0] * x / x[0], ":", color="grey", label="slope 1 (linear)")
        for xi, yi in zip(x, y):
            ax.annotate(f"{yi:.2g} s", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=8)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("CPU seconds")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    import textwrap

    title = "CPU time against size: " + results["meta"]["command"]
    fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", action="store_true", help="add the 1e7 points (calibration, Bayesian blocks)")
    ap.add_argument("--quick", action="store_true", help="smallest sizes only (smoke run)")
    ap.add_argument("--only", choices=["detection", "calibration", "blocks"], action="append",
                    help="run only these kernels (repeatable)")
    ap.add_argument("--astropy", action="store_true", help="also time astropy's Bayesian blocks up to 1e4 events")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "benchmarks")
    args = ap.parse_args(argv)

    counts = [1e3, 1e4] if args.quick else [1e3, 1e4, 1e5, 1e6]
    sources = [1, 3] if args.quick else [1, 3, 10, 30]
    hits = [1e4, 1e5] if args.quick else [1e4, 1e5, 1e6] + ([1e7] if args.big else [])
    events = [1e3, 1e4] if args.quick else [1e3, 1e4, 1e5, 1e6] + ([1e7] if args.big else [])
    only = set(args.only or ["detection", "calibration", "blocks"])
    command = "python tools/bench_scaling.py" + (" --big" if args.big else "") + (" --quick" if args.quick else "")
    command += "".join(f" --only {o}" for o in (args.only or [])) + (" --astropy" if args.astropy else "")
    results: dict = {}
    if args.only and (args.out / "scaling.json").exists():
        # A partial run updates its kernels in the recorded figures.
        results = json.loads((args.out / "scaling.json").read_text())
    meta = results.setdefault("meta", {"timer": "time.process_time", "blas_threads": 1})
    meta.setdefault("commands", [])
    meta["commands"].append(command)
    meta["command"] = "; ".join(dict.fromkeys(meta["commands"]))
    with single_blas_thread():
        if "detection" in only:
            det = detection_points(counts, sources)
            results["detection_counts"] = det["detection_counts"]
            results["detection_sources"] = det["detection_sources"]
        if "calibration" in only:
            results["calibration_hits"] = calibration_points(hits)
        if "blocks" in only:
            results["bayesian_blocks"] = blocks_points(events, 1e4 if args.astropy else 0.0)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scaling.json").write_text(json.dumps(results, indent=1) + "\n")
    plot(results, args.out / "scaling.png")
    print(f"wrote {args.out / 'scaling.json'} and {args.out / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
