"""Warm and flickering column study of the per-observation pixel search (issue 21, item 2).

Simulated fields (``gp`` preset, one in-field source, 10 ks, the bundled CALDB), run
through the XBAND-GP pipeline exactly as ``mxt run`` (``campaign.execute.process_simulation``):

* ``--n-warm`` fields with a column not in BADPIX firing about one hit per pixel per
  observation (amplitude ~ Exp(1 keV)): steady (warm) in half of them, flickering
  (every hit in 50 frames) in the other half; false sources per field (detections
  matching no simulated source, anywhere) with the search off and on, and whether
  the column was flagged;
* ``--n-clean`` clean fields through the calibration chain alone: share of the pixels
  and of the valid events the search flags (the exposure lost on a clean field).

Usage::

    PYTHONPATH=$PWD python tools/warm_pixel_study.py --n-warm 40 --n-clean 40 --seed 2121 \\
        --out reports/examples/warm_pixel_study_n40_seed2121.json

One process, one worker (a few seconds per field).  Prints a summary with binomial /
Poisson 95 % upper limits.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from mxt_pipeline.caldb.simulator import load_simulator_calibration
from mxt_pipeline.calib.chain import ChainParams, calibrate
from mxt_pipeline.campaign.execute import process_simulation
from mxt_pipeline.simulate.bench import simulate
from mxt_pipeline.simulate.cases import gp_scenario
from mxt_pipeline.simulate.detector import WarmColumn


def _upper_poisson(k: int, n: int) -> float:
    """95 % upper limit on a rate per field from k events in n fields."""
    return float(stats.chi2.ppf(0.95, 2 * k + 2) / 2.0 / n)


def _upper_binom(k: int, n: int) -> float:
    return float(stats.beta.ppf(0.95, k + 1, n - k)) if k < n else 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-warm", type=int, default=40)
    ap.add_argument("--n-clean", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2121)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--search-only", action="store_true", help="run the warm fields with the search on only")
    a = ap.parse_args(argv)

    cal, _ = load_simulator_calibration(None, met=3.0e8)
    rng = np.random.default_rng(a.seed)
    warm_rows = []
    for i in range(a.n_warm):
        seed = a.seed + i
        col = int(rng.integers(16, 240))
        flicker = 50 if i % 2 else 0
        sc = gp_scenario(seed, n_sources=1)
        wc = WarmColumn(rawy=col, hits_per_pixel=1.0, mean_kev=1.0, flicker_frames=flicker)
        sc = dataclasses.replace(sc, detector=dataclasses.replace(sc.detector, warm_columns=(wc,)))
        ds = simulate(sc, seed, cal)
        row = {"seed": seed, "column": col, "flicker_frames": flicker}
        for search in (True,) if a.search_only else (False, True):
            rec = process_simulation(ds, {"parameters": {"calibrate": {"warm_pixel_search": search}}})
            key = "on" if search else "off"
            row[f"false_{key}"] = int(rec["n_false"])
            row[f"found_{key}"] = int(rec["n_found"])
            row[f"false_ml_{key}"] = [round(float(d["det_ml"]), 1) for d in rec["detections"] if d["matched"] < 0]
        _, rep = calibrate(ds.passes, ds.attitude, ds.angles, list(ds.saa.values()), cal, ChainParams())
        ps = rep.pixel_search
        row["column_flagged"] = col in ps["warm_columns"] or col in ps["flickering_columns"]
        row["n_pixels_flagged"] = ps["n_pixels_flagged"]
        warm_rows.append(row)
        print(json.dumps(row), flush=True)
    clean_rows = []
    for i in range(a.n_clean):
        seed = a.seed + 10_000 + i
        ds = simulate(gp_scenario(seed, n_sources=1), seed, cal)
        _, rep = calibrate(ds.passes, ds.attitude, ds.angles, list(ds.saa.values()), cal, ChainParams())
        ps = rep.pixel_search
        row = {"seed": seed, "n_pixels_flagged": ps["n_pixels_flagged"], "n_events_flagged": ps["n_events_flagged"],
               "n_events_searched": ps["n_events_searched"], "found": {k: ps[k] for k in
               ("warm_pixels", "warm_columns", "flickering_pixels", "flickering_columns") if ps[k]}}  # fmt: skip
        clean_rows.append(row)
        print(json.dumps(row), flush=True)

    summary = {"command": "PYTHONPATH=$PWD python tools/warm_pixel_study.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    if warm_rows:
        n = len(warm_rows)
        for key in ("on",) if a.search_only else ("off", "on"):
            k = sum(r[f"false_{key}"] for r in warm_rows)
            summary[f"false_per_field_search_{key}"] = {"false": k, "fields": n, "mean": k / n,
                                                        "upper95": _upper_poisson(k, n)}  # fmt: skip
        kf = sum(r["column_flagged"] for r in warm_rows)
        summary["column_flagged"] = {"flagged": kf, "fields": n}
        summary["in_field_source_found"] = {key: sum(r[f"found_{key}"] for r in warm_rows)
                                            for key in (("on",) if a.search_only else ("off", "on"))}  # fmt: skip
    if clean_rows:
        n = len(clean_rows)
        pix = np.array([r["n_pixels_flagged"] for r in clean_rows], float) / 65536.0
        ev = np.array([r["n_events_flagged"] / max(r["n_events_searched"], 1) for r in clean_rows])
        kf = sum(1 for r in clean_rows if r["n_pixels_flagged"])
        summary["clean"] = {"fields": n, "fields_with_flags": kf, "fields_with_flags_upper95": _upper_binom(kf, n),
                            "pixel_fraction_mean": float(pix.mean()), "pixel_fraction_max": float(pix.max()),
                            "event_fraction_mean": float(ev.mean()), "event_fraction_max": float(ev.max())}  # fmt: skip
    print(json.dumps(summary, indent=1))
    if a.out:
        a.out.write_text(json.dumps({"summary": summary, "warm": warm_rows, "clean": clean_rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
