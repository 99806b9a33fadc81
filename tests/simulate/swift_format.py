"""A folder in the Swift-XRT light-curve format, written from the analytic model.

The real curves (``../shared/data``) are never copied into the project; the reader's
tests run on this synthetic folder, so they run (and cover the reader) on a machine
without the data.  Layout as the data's README: ``GRBtable.csv`` (``;``-separated),
``PC/<stem>.json`` and ``WT/<stem>.json`` with Time, TimePos, TimeNeg, Rate, RatePos,
RateNeg (seconds after the trigger, counts/s).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mxt_pipeline.simulate.timeprofiles import CanonicalGRB


def mode_doc(event: str, mode: str, edges: np.ndarray, profile, rng: np.random.Generator) -> dict:
    """One mode's JSON document: bins between ``edges``, rates of ``profile`` with scatter."""
    lo, hi = edges[:-1], edges[1:]
    t = np.sqrt(lo * hi)
    rate = np.asarray(profile.value(t), float) * rng.lognormal(0.0, 0.1, t.size)
    err = 0.1 * rate
    return {"event": event, "mode": mode, "Time": t.tolist(), "TimePos": (hi - t).tolist(),
            "TimeNeg": (lo - t).tolist(), "Rate": rate.tolist(), "RatePos": err.tolist(),
            "RateNeg": (-err).tolist()}  # fmt: skip


def write_swift_folder(root: Path, events: dict[str, float], seed: int = 0) -> Path:
    """Write ``events`` (name -> time of the WT/PC switch, s) as a Swift-format folder."""
    rng = np.random.default_rng(seed)
    (root / "PC").mkdir(parents=True, exist_ok=True)
    (root / "WT").mkdir(exist_ok=True)
    rows = ["GRB;numbreaks;lc type;NH_gal;Redshift;Flares"]
    for k, (event, switch) in enumerate(events.items()):
        stem = event.replace(" ", "_")
        prof = CanonicalGRB(trigger_time=0.0)
        wt_edges = np.geomspace(60.0, switch * 1.2, 15)  # overlaps the PC start a little
        pc_edges = np.geomspace(switch, 2e5, 30)
        (root / "WT" / f"{stem}.json").write_text(json.dumps(mode_doc(event, "WT", wt_edges, prof, rng)))
        (root / "PC" / f"{stem}.json").write_text(json.dumps(mode_doc(event, "PC", pc_edges, prof, rng)))
        rows.append(f"{event};2;Canonical;{0.01 * (k + 1)};{'N/A' if k % 2 else 1.5};[]")
    (root / "GRBtable.csv").write_text("\n".join(rows) + "\n")
    return root
