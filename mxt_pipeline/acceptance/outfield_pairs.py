"""Acceptance study of the detection off the nominal case: out-of-field sources, confused pairs.

``python -m mxt_pipeline.acceptance.outfield_pairs --n 60 --seed 2121 --out reports/examples/outfield_pairs.json``

The observations are simulated and detected as in the detection acceptance study
(:mod:`mxt_pipeline.acceptance.detection`: Poisson band images of the CALDB PSF on the
standard background, turned into an event list and run through the ``detect`` brick of
``mxt run``); each case has its own random stream (``SeedSequence(seed, spawn_key=(k, i))``
for run i of the k-th case of :data:`CASES`), so results do not depend on the number of
workers.  Case families:

* ``outfield_alone``: a 100-count source at a random position of the central half of
  the field (|DETY|, |DETZ| <= 64 px): its detection rate, the reference;
* ``outfield_20x``, ``outfield_100x``: the same, with a source of 20x (100x) its counts
  outside the field whose cross arm crosses it (same DETZ, or DETY, within +/- 5 px; its
  spot centred 0.5-1.5 spot FWHM beyond a random chip edge).  Measured: the faint
  source found (a listed in-field source within half a FWHM), the bright one listed with
  the OUT_OF_FOV flag, listed inside the chip, and the false in-field sources per field;
  and, as the ceiling of any ML detector at the list's threshold, the fraction of runs
  where the faint source's statistical DET_ML in the fit started at the true positions
  reaches the threshold (the arm's counts are background under the faint source);
* ``pair_1fwhm``: 500 + 100 counts one spot FWHM apart (random direction) near the
  axis: the faint one found, the bright one's statistical R90 coverage over all runs and
  split by whether the faint one was found; ``pair_1fwhm_notest`` the same runs without
  the pair test (``detect.pair_test=false``; same seeds, so the same images);
* ``single_<N>`` (N = 300, 1000, 3000): one source near the axis; false splits (a
  second in-field source listed within 2 FWHM) per run;
* ``--calibrate-pairs M``: M single sources of each count on their own streams, run
  through the kernel (stage 1, ML stage) and the pair test's two-component fit: the
  distribution of the robust split gain, whose upper quantile sets the threshold
  (:data:`mxt_pipeline.detect.confusion.DEFAULT_PAIR_THRESHOLD`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from mxt_pipeline.acceptance.detection import (
    BrickDetector,
    ValidationSetup,
    events_from_images,
    simulate_problem,
)
from mxt_pipeline.binomial import clopper_pearson
from mxt_pipeline.detect.blas import single_blas_thread
from mxt_pipeline.detect.confusion import PairTestParameters, split_gain
from mxt_pipeline.detect.mlfit import detection_likelihoods, fit_sources, run_ml
from mxt_pipeline.detect.outfield import outside_field
from mxt_pipeline.detect.srclist import FLAG_OUT_OF_FOV, FLAG_PAIR
from mxt_pipeline.detect.stage1 import run_stage1

__all__ = ["CASES", "CALIBRATION_COUNTS", "run_outfield", "run_pair_case", "run_single", "calibration_gain",
           "cpu_three_sources", "summarise", "markdown", "main"]

#: Case families, in the order of their random streams.
CASES = ("outfield_alone", "outfield_20x", "outfield_100x", "pair_1fwhm", "pair_1fwhm_notest", "single_300",
         "single_1000", "single_3000")
#: Counts of the single sources of the pair-threshold calibration.
CALIBRATION_COUNTS = (300, 1000, 3000)
_CAL_STREAM = 500
#: Position bits of FLAGS (a listed source is in the field when none is set).
_POSITION_BITS = ~FLAG_PAIR


def _listed(table) -> dict:
    n = len(table)

    def col(name, dtype=float):
        return np.asarray(table[name], dtype) if n else np.zeros(0, dtype)

    return {"y": col("DETY"), "z": col("DETZ"), "r90": col("R90_STAT"), "flags": col("FLAGS", int),
            "counts": col("COUNTS").reshape(n, -1).sum(axis=1) if n else np.zeros(0), "det_ml": col("DET_ML")}


def _detect(setup: ValidationSetup, detector: BrickDetector, problem, **overrides) -> dict:
    events = events_from_images(setup, [b.counts for b in problem.bands])
    table = detector.detect_events(events, **overrides).values["srclist"].table
    out = _listed(table)
    # R90 back to DET pixels (the study judges DET positions), as Listed.from_table does.
    from mxt_pipeline.detect.pipeline import pixel_scale_arcsec

    if out["y"].size:
        out["r90"] = out["r90"] / pixel_scale_arcsec(setup.teldef, out["y"], out["z"])
    return out


def _in_field(listed: dict) -> np.ndarray:
    return (listed["flags"] & _POSITION_BITS) == 0


def _match(listed: dict, y: float, z: float, mask: np.ndarray, limit: float) -> int:
    if not np.any(mask):
        return -1
    d = np.where(mask, np.hypot(listed["y"] - y, listed["z"] - z), np.inf)
    i = int(np.argmin(d))
    return i if d[i] < limit else -1


def run_outfield(setup: ValidationSetup, detector: BrickDetector, ratio: float, rng: np.random.Generator,
                 faint: float = 100.0) -> dict:  # fmt: skip
    """A faint in-field source, and a ``ratio`` x brighter one outside the field on its arm."""
    fwhm = setup.fwhm()
    yf, zf = rng.uniform(-64.0, 64.0, 2)
    ys, zs, cs = [yf], [zf], [faint]
    axis = int(rng.integers(2))
    side = float(rng.choice([-1.0, 1.0]))
    depth = float(rng.uniform(0.5, 1.5)) * fwhm
    along = float(rng.uniform(-5.0, 5.0))
    if ratio > 0:
        if axis == 0:  # spot beyond a DETY edge, the arm along DETY at the faint one's DETZ
            edge = setup.y_edges[-1] if side > 0 else setup.y_edges[0]
            ys.append(edge + side * depth)
            zs.append(zf + along)
        else:
            edge = setup.z_edges[-1] if side > 0 else setup.z_edges[0]
            ys.append(yf + along)
            zs.append(edge + side * depth)
        cs.append(ratio * faint)
    counts = np.asarray(cs)[:, None] * setup.band_fractions[None, :]
    problem = simulate_problem(setup, ys, zs, counts, rng)
    listed = _detect(setup, detector, problem)
    inside = _in_field(listed)
    i = _match(listed, yf, zf, inside, 0.5 * fwhm)
    # The ceiling of any ML detector at this threshold: the faint source's statistical
    # DET_ML in the fit of both sources started at the truth (kernel, same images).
    start = fit_sources(problem, np.asarray(ys), np.asarray(zs), counts=counts, background=setup.background)
    start = detection_likelihoods(problem, start, setup.params.ml_parameters())
    out = {"found": i >= 0, "n_in_field": int(inside.sum()), "false_in_field": int(inside.sum()) - int(i >= 0),
           "oracle_det_ml": float(start.det_ml[0]), "oracle_found": bool(start.det_ml[0] >= setup.params.threshold),
           "faint_offset": float(np.hypot(listed["y"][i] - yf, listed["z"][i] - zf)) if i >= 0 else None}
    if ratio > 0:
        oof = (listed["flags"] & FLAG_OUT_OF_FOV) != 0
        out.update({
            "bright_listed_out_of_fov": bool(np.any(oof)),
            "bright_counts_ratio": float(listed["counts"][oof].max() / (ratio * faint)) if np.any(oof) else None,
            # The bright one listed inside the chip: an in-field source within a FWHM of
            # the chip edge where its spot lies, on its arm.
            "bright_listed_in_field": bool(np.any(inside & (np.hypot(listed["y"] - ys[1], listed["z"] - zs[1])
                                                            < depth + fwhm))),
            "bright_offset_along_arm": float(np.min(np.hypot(listed["y"][oof] - ys[1], listed["z"][oof] - zs[1])))
            if np.any(oof) else None,
        })  # fmt: skip
    return out


def run_pair_case(setup: ValidationSetup, detector: BrickDetector, rng: np.random.Generator, *, bright: float = 500.0,
                  ratio: float = 5.0, separation_fwhm: float = 1.0, pair_test: bool = True) -> dict:  # fmt: skip
    """A bright and a faint source ``separation_fwhm`` apart: faint found, bright covered?"""
    fwhm = setup.fwhm()
    phi = rng.uniform(0.0, 2.0 * np.pi)
    c0 = rng.uniform(-0.5, 0.5, 2)
    y = np.array([c0[0], c0[0] + separation_fwhm * fwhm * np.cos(phi)])
    z = np.array([c0[1], c0[1] + separation_fwhm * fwhm * np.sin(phi)])
    counts = np.array([bright, bright / ratio])[:, None] * setup.band_fractions[None, :]
    problem = simulate_problem(setup, y, z, counts, rng)
    listed = _detect(setup, detector, problem, pair_test=pair_test)
    inside = _in_field(listed)
    ib = _match(listed, y[0], z[0], inside, 0.5 * fwhm)
    rest = inside.copy()
    if ib >= 0:
        rest[ib] = False
    jf = _match(listed, y[1], z[1], rest, 0.5 * fwhm)
    out = {"bright_found": ib >= 0, "faint_found": jf >= 0, "n_sources": int(listed["y"].size)}
    if ib >= 0:
        d = float(np.hypot(listed["y"][ib] - y[0], listed["z"][ib] - z[0]))
        out.update({"bright_offset": d, "bright_r90": float(listed["r90"][ib]),
                    "bright_inside90": bool(d < listed["r90"][ib])})
    if jf >= 0:
        out["faint_flagged_pair"] = bool(listed["flags"][jf] & FLAG_PAIR)
    return out


def run_single(setup: ValidationSetup, detector: BrickDetector, counts: float, rng: np.random.Generator) -> dict:
    """One source near the axis: is it split (a second in-field source within 2 FWHM)?"""
    fwhm = setup.fwhm()
    y0, z0 = rng.uniform(-0.5, 0.5, 2)
    problem = simulate_problem(setup, [y0], [z0], counts * setup.band_fractions[None, :], rng)
    listed = _detect(setup, detector, problem)
    near = _in_field(listed) & (np.hypot(listed["y"] - y0, listed["z"] - z0) < 2.0 * fwhm)
    return {"found": bool(np.any(near)), "split": bool(near.sum() >= 2),
            "pair_flagged": bool(np.any(listed["flags"][near] & FLAG_PAIR))}


def calibration_gain(setup: ValidationSetup, counts: float, rng: np.random.Generator) -> dict:
    """Robust split gain of a single source (kernel: stage 1, ML stage, two-component fit)."""
    y0, z0 = rng.uniform(-0.5, 0.5, 2)
    problem = simulate_problem(setup, [y0], [z0], counts * setup.band_fractions[None, :], rng)
    p = setup.params
    s1 = run_stage1(problem, max_sources=p.stage1_max_sources, min_gain=p.stage1_min_gain,
                    psf_systematic=p.psf_systematic)  # fmt: skip
    state = run_ml(problem, s1.y, s1.z, s1.counts, s1.background, p.ml_parameters())
    ok = ~outside_field(problem, state.y, state.z)
    if not np.any(ok):
        return {"gain": None}
    i = int(np.argmax(np.where(ok, state.counts.sum(axis=1), -np.inf)))
    trial = split_gain(problem, state, i, p.ml_parameters(), PairTestParameters())
    return {"gain": float(trial.robust_gain), "statistical_gain": float(trial.gain)}


def cpu_three_sources(setup: ValidationSetup, n: int = 20, seed: int = 1) -> dict:
    """Detection CPU (kernel, process time) on a 3-source field: 300, 1000, 100 counts.

    One warm-up run (PSF tables), then ``n`` Poisson draws; the median and mean CPU
    seconds of :func:`~mxt_pipeline.detect.pipeline.detect_in_problem` and the number of
    sources listed per run.
    """
    from mxt_pipeline.detect.pipeline import detect_in_problem

    ys, zs = [-40.0, 30.0, 70.0], [20.0, -50.0, 60.0]
    counts = np.array([300.0, 1000.0, 100.0])[:, None] * setup.band_fractions[None, :]
    detect_in_problem(simulate_problem(setup, ys, zs, counts, np.random.default_rng(0)), setup.params)
    cpu, found = [], []
    for k in range(n):
        problem = simulate_problem(setup, ys, zs, counts, np.random.default_rng(seed + k))
        t0 = time.process_time()
        result = detect_in_problem(problem, setup.params)
        cpu.append(time.process_time() - t0)
        found.append(result.n_sources)
    return {"runs": n, "median_cpu_seconds": float(np.median(cpu)), "mean_cpu_seconds": float(np.mean(cpu)),
            "sources_listed": np.bincount(found).tolist()}


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------

_SETUP: ValidationSetup | None = None
_DETECTOR: BrickDetector | None = None


def _init_worker(caldb) -> None:
    global _SETUP, _DETECTOR
    _SETUP = ValidationSetup.from_caldb(caldb)
    _DETECTOR = BrickDetector(_SETUP, caldb)


def _seed(seed: int, stream: int, index: int) -> int:
    return int(np.random.SeedSequence(seed, spawn_key=(stream, index)).generate_state(1)[0])


def _task(task: tuple) -> tuple:
    case, index, seed = task
    # The no-test pair case draws the same images as the pair case.
    rng = np.random.default_rng(seed)
    setup, det = _SETUP, _DETECTOR
    with single_blas_thread():
        t0 = time.process_time()
        if case == "outfield_alone":
            out = run_outfield(setup, det, 0.0, rng)
        elif case.startswith("outfield_"):
            out = run_outfield(setup, det, float(case.split("_")[1].rstrip("x")), rng)
        elif case == "pair_1fwhm":
            out = run_pair_case(setup, det, rng)
        elif case == "pair_1fwhm_notest":
            out = run_pair_case(setup, det, rng, pair_test=False)
        elif case.startswith("single_"):
            out = run_single(setup, det, float(case.split("_")[1]), rng)
        elif case.startswith("calibrate_"):
            out = calibration_gain(setup, float(case.split("_")[1]), rng)
        else:
            raise ValueError(case)
        out["cpu_seconds"] = time.process_time() - t0
    return case, index, out


def _stream(case: str) -> int:
    if case == "pair_1fwhm_notest":
        return CASES.index("pair_1fwhm")
    if case.startswith("calibrate_"):
        return _CAL_STREAM + CALIBRATION_COUNTS.index(int(case.split("_")[1]))
    return CASES.index(case)


@contextlib.contextmanager
def _pool(workers: int, caldb) -> Iterator:
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers, initializer=_init_worker, initargs=(caldb,)) as pool:
            yield lambda tasks: pool.imap_unordered(_task, tasks, chunksize=1)
        return
    _init_worker(caldb)
    yield lambda tasks: map(_task, tasks)


def _rate(k: int, n: int) -> dict:
    return {"k": int(k), "n": int(n), "value": k / n if n else float("nan"), "ci95": list(clopper_pearson(k, n))}


def summarise(results: dict[str, list[dict]]) -> dict:
    """Figures of every case with exact binomial 95% intervals, and the goals' verdicts."""
    out: dict = {"cases": {}, "goals": {}}
    for case, runs in results.items():
        n = len(runs)
        cpu = float(np.mean([r["cpu_seconds"] for r in runs])) if runs else float("nan")
        if case.startswith("outfield_"):
            c = {"runs": n, "faint_found": _rate(sum(r["found"] for r in runs), n),
                 "faint_oracle_det_ml_above_threshold": _rate(sum(r["oracle_found"] for r in runs), n),
                 "false_in_field_per_field": float(np.mean([r["false_in_field"] for r in runs])),
                 "fields_with_false_in_field": _rate(sum(r["false_in_field"] > 0 for r in runs), n),
                 "cpu_seconds_per_run": cpu}  # fmt: skip
            if case != "outfield_alone":
                ratios = [r["bright_counts_ratio"] for r in runs if r["bright_counts_ratio"] is not None]
                c.update({"bright_listed_out_of_fov": _rate(sum(r["bright_listed_out_of_fov"] for r in runs), n),
                          "bright_listed_in_field": _rate(sum(r["bright_listed_in_field"] for r in runs), n),
                          "bright_counts_ratio_median": float(np.median(ratios)) if ratios else None})
            out["cases"][case] = c
        elif case.startswith("pair_"):
            bright = [r for r in runs if r["bright_found"]]
            with_f = [r for r in bright if r["faint_found"]]
            without = [r for r in bright if not r["faint_found"]]
            out["cases"][case] = {
                "runs": n, "faint_found": _rate(sum(r["faint_found"] for r in runs), n),
                "bright_found": _rate(len(bright), n),
                "bright_coverage90": _rate(sum(r["bright_inside90"] for r in bright), len(bright)),
                "bright_coverage90_faint_found": _rate(sum(r["bright_inside90"] for r in with_f), len(with_f)),
                "bright_coverage90_faint_missed": _rate(sum(r["bright_inside90"] for r in without), len(without)),
                "bright_median_offset_pix": float(np.median([r["bright_offset"] for r in bright])) if bright else None,
                "cpu_seconds_per_run": cpu,
            }  # fmt: skip
        elif case.startswith("single_"):
            out["cases"][case] = {"runs": n, "found": _rate(sum(r["found"] for r in runs), n),
                                  "false_split": _rate(sum(r["split"] for r in runs), n),
                                  "cpu_seconds_per_run": cpu}  # fmt: skip
        elif case.startswith("calibrate_"):
            g = np.array([r["gain"] for r in runs if r["gain"] is not None])
            thr = PairTestParameters().threshold
            out["cases"][case] = {"runs": n, "tested": int(g.size),
                                  "quantiles": {str(q): float(np.quantile(g, q)) for q in (0.5, 0.9, 0.95, 0.98, 0.99)}
                                  if g.size else {},
                                  "above_threshold": _rate(int(np.sum(g >= thr)), int(g.size)), "threshold": thr,
                                  "gains": g.round(3).tolist()}  # fmt: skip
    cs = out["cases"]
    if "outfield_alone" in cs:
        ref = cs["outfield_alone"]["faint_found"]["value"]
        for case in ("outfield_20x", "outfield_100x"):
            if case in cs:
                v = cs[case]["faint_found"]["value"]
                out["goals"][f"{case}: faint found within 10% of alone ({ref:.3f})"] = {
                    "value": v, "pass": bool(v >= 0.9 * ref)}
                out["goals"][f"{case}: no in-field false source from the leak"] = {
                    "value": cs[case]["false_in_field_per_field"],
                    "pass": bool(cs[case]["false_in_field_per_field"] <= cs["outfield_alone"]["false_in_field_per_field"] + 0.02)}
    if "pair_1fwhm" in cs:
        c = cs["pair_1fwhm"]
        out["goals"]["pair 1 FWHM 1:5: faint found >= 60%"] = {"value": c["faint_found"]["value"],
                                                              "pass": bool(c["faint_found"]["value"] >= 0.60)}
        for key in ("bright_coverage90", "bright_coverage90_faint_found", "bright_coverage90_faint_missed"):
            v = c[key]["value"]
            out["goals"][f"pair 1 FWHM 1:5: {key} 90 +/- 3%"] = {"value": v, "n": c[key]["n"],
                                                                 "pass": bool(abs(v - 0.90) <= 0.03)}
    return out


def markdown(report: dict) -> str:
    """The report as a markdown page (figures, intervals, goals, command)."""
    lines = ["# Out-of-field sources and confused pairs: acceptance study", "",
             f"Command: `{report['command']}`", "",
             f"Seed {report['seed']}, {report['workers']} workers, wall {report['wall_seconds']:.0f} s. "
             "Detector: the detect brick of `mxt run` (CALDB threshold and levels) on event lists of the "
             "simulated images. Intervals: exact (Clopper-Pearson) 95%.", "", "## Goals", ""]  # fmt: skip
    for k, v in report["goals"].items():
        n = f" (n = {v['n']})" if "n" in v else ""
        lines.append(f"- {'PASS' if v['pass'] else 'FAIL'} {k}: {v['value']:.3f}{n}")
    lines += ["", "## Cases", ""]
    for case, c in report["cases"].items():
        lines.append(f"### {case}")
        lines.append("")
        for k, v in c.items():
            if k == "gains":
                continue
            if isinstance(v, dict) and "ci95" in v:
                lines.append(f"- {k}: {v['k']}/{v['n']} = {v['value']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]")
            elif isinstance(v, float):
                lines.append(f"- {k}: {v:.3f}")
            else:
                lines.append(f"- {k}: {v}")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the cases and write the JSON and markdown reports."""
    ap = argparse.ArgumentParser(prog="python -m mxt_pipeline.acceptance.outfield_pairs",
                                 description=__doc__.split("\n\n")[0])  # fmt: skip
    ap.add_argument("--n", type=int, default=60, help="runs per case")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated cases (default: all)")
    ap.add_argument("--calibrate-pairs", type=int, default=0, metavar="M",
                    help="instead: M single sources of each of CALIBRATION_COUNTS for the pair threshold")
    ap.add_argument("--seed", type=int, default=2121)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=Path("reports/outfield_pairs.json"))
    ap.add_argument("--cpu", type=int, default=0, metavar="N",
                    help="instead: detection CPU on a 3-source field, N runs (printed as JSON)")
    ap.add_argument("--caldb", default=None)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.cpu > 0:
        with single_blas_thread():
            print(json.dumps(cpu_three_sources(ValidationSetup.from_caldb(args.caldb), args.cpu, args.seed)))
        return 0
    if args.calibrate_pairs > 0:
        cases = [f"calibrate_{c}" for c in CALIBRATION_COUNTS]
        n = args.calibrate_pairs
    else:
        cases = [c for c in args.cases.split(",") if c]
        n = args.n
    tasks = [(c, i, _seed(args.seed, _stream(c), i)) for c in cases for i in range(n)]
    drawn: dict[str, dict[int, dict]] = {c: {} for c in cases}
    with _pool(args.workers, args.caldb) as run:
        for k, (case, i, out) in enumerate(run(tasks), 1):
            drawn[case][i] = out
            if k % 20 == 0:
                print(f"{k}/{len(tasks)} runs, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    results = {c: [drawn[c][i] for i in range(n)] for c in cases}
    report = summarise(results)
    report.update({"seed": args.seed, "n_per_case": n, "workers": args.workers,
                   "wall_seconds": time.perf_counter() - t0,
                   "command": "python -m mxt_pipeline.acceptance.outfield_pairs "
                              + " ".join(sys.argv[1:] if argv is None else list(argv))})  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    for k, v in report["goals"].items():
        print(f"{'PASS' if v['pass'] else 'FAIL'}  {k}: {v['value']:.3f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
