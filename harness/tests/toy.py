"""A toy pipeline and dataset to test the replay machinery independently of the science.

The toy pipeline ``toy`` has three bricks built on the real brick/pipeline framework:

* ``merge``: L1 passes -> one time-sorted hit list without the duplicated frames of
  overlapping passes (an MXT_L1_RAW product);
* ``spectrum``: hit list -> histogram of PHA in a band (a JSON product);
* ``preview``: a PNG (non-critical).

Its science is in module-level functions (:func:`sort_hits`, :data:`BAND`) so that the
broken-variant tests can monkeypatch them exactly like the real ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.datamodel import GTI, AngleTable, Attitude, RawHits, SAAIntervals, week_of
from mxt_pipeline.io.products import (
    read_raw_hits,
    write_angles,
    write_attitude,
    write_raw_hits,
    write_saa,
)
from mxt_pipeline.pipelines import Brick, Parameter, Pipeline, Port
from mxt_pipeline.pipelines.bricks.codecs import L1_PASSES, OBSERVATION, png_codec
from mxt_pipeline.pipelines.ports import Codec, json_codec

T0 = 3.0e8
OBS_ID = "00000777"
#: PHA band of the spectrum brick (a broken variant changes it).
BAND = (150, 3000)


def sort_hits(time: np.ndarray) -> np.ndarray:
    """Order of the hits in time (stable, so equal times keep the pass order)."""
    return np.argsort(time, kind="stable")


def merge_core(inputs, params, cal) -> dict[str, Any]:
    passes = list(inputs["l1_passes"].values())  # delivery order: pass 2 comes first
    table = np.concatenate([np.asarray(p.table.as_array()) for p in passes])
    # Overlapping passes repeat whole frames: keep one copy of each (FRAME, RAWY, RAWZ).
    _, first = np.unique(np.stack([table["FRAME"], table["RAWY"], table["RAWZ"]], axis=1), axis=0, return_index=True)
    table = table[np.sort(first)]
    table = table[sort_hits(table["TIME"])]
    gti = GTI.empty()
    for p in passes:
        gti = gti.union(p.gti)
    meta = {"OBS_ID": passes[0].meta.get("OBS_ID"), "PASS_ID": 0, "STATION": "MERGED"}
    return {"hits": RawHits({n: table[n] for n in table.dtype.names}, gti=gti, meta=meta)}


def spectrum_core(inputs, params, cal) -> dict[str, Any]:
    pha = inputs["hits"]["PHA"]
    lo, hi = BAND
    counts, edges = np.histogram(pha, bins=params.bins, range=(lo, hi))
    return {"spectrum": {"band": [lo, hi], "counts": counts.tolist(), "edges": edges.tolist(),
                         "mean_pha": float(pha[(pha >= lo) & (pha < hi)].mean())}}  # fmt: skip


def preview_core(inputs, params, cal) -> dict[str, Any]:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.step(inputs["spectrum"]["edges"][:-1], inputs["spectrum"]["counts"])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return {"preview": buf.getvalue()}


HITS = Codec("MXT_L1_RAW", "toy_hits_{obs_id}.fits", lambda p, v, n: write_raw_hits(p, v), read_raw_hits, fits=True)

MERGE = Brick("merge", "merge and sort the passes", merge_core,
              inputs=(Port("observation", OBSERVATION, "dataset", optional=True), Port("l1_passes", L1_PASSES, "passes")),
              outputs=(Port("hits", HITS, "merged hits"),))  # fmt: skip
SPECTRUM = Brick("spectrum", "PHA histogram", spectrum_core,
                 inputs=(Port("hits", HITS, "merged hits"),),
                 outputs=(Port("spectrum", json_codec("toy_spec_{obs_id}.json", role="product"), "histogram"),),
                 params=(Parameter("bins", int, 16, "number of bins", minimum=1),))  # fmt: skip
PREVIEW = Brick("preview", "a picture", preview_core, inputs=(Port("spectrum", json_codec("toy_spec_{obs_id}.json"), "h"),),
                outputs=(Port("preview", png_codec("toy_{obs_id}.png"), "picture"),), critical=False)  # fmt: skip


def build_pipeline() -> Pipeline:
    return Pipeline("toy", [MERGE, SPECTRUM, PREVIEW], external=("observation", "target", "l1_passes", "attitude", "angles"))


def register(monkeypatch) -> None:
    """Make ``toy`` a known pipeline (registry and runtime modes) for one test."""
    from mxt_pipeline.pipelines import registry, runtime

    monkeypatch.setitem(registry.PIPELINES, "toy", "harness.tests.toy:build_pipeline")
    monkeypatch.setitem(runtime._MODE_OF_PIPELINE, "toy", "XBAND-GP")


def write_dataset(root: Path, seed: int = 0) -> dict[str, Any]:
    """Two overlapping passes written in reverse order, with ATT, ANG and SAA files."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    n_frames = 400
    frames = np.arange(n_frames)
    hits = []
    for f in frames:
        k = rng.poisson(3)
        hits += [(T0 + f * C.FRAME_TIME_S, f, int(y), int(z), int(p))
                 for y, z, p in zip(rng.integers(0, 256, k), rng.integers(0, 256, k), rng.integers(100, 3500, k))]  # fmt: skip
    arr = np.array(hits, dtype=[("TIME", "f8"), ("FRAME", "i4"), ("RAWY", "i2"), ("RAWZ", "i2"), ("PHA", "i2")])
    # Deduplicate pixel hits within a frame (one value per pixel per frame).
    _, keep = np.unique(np.stack([arr["FRAME"], arr["RAWY"], arr["RAWZ"]], axis=1), axis=0, return_index=True)
    arr = arr[np.sort(keep)]
    cut1, cut2 = 250, 180  # pass 1: frames < 250, pass 2: frames >= 180 (overlap 180-249)
    files = []
    for pid, sel in ((2, arr["FRAME"] >= cut2), (1, arr["FRAME"] < cut1)):
        part = arr[sel]
        t0 = T0 + part["FRAME"].min() * C.FRAME_TIME_S
        t1 = T0 + (part["FRAME"].max() + 1) * C.FRAME_TIME_S
        rh = RawHits({n: part[n] for n in part.dtype.names}, gti=GTI([t0], [t1]),
                     meta={"OBS_ID": OBS_ID, "PASS_ID": pid, "STATION": "KRU"})  # fmt: skip
        name = f"l1/mxt_l1_raw_{OBS_ID}_p{pid:02d}.fits"
        write_raw_hits(root / name, rh)
        files.append(name)
    t = T0 + np.arange(0.0, n_frames * C.FRAME_TIME_S + 10, 5.0)
    att = Attitude.from_pointing(t, np.full(t.size, 150.0), np.full(t.size, 30.0), np.zeros(t.size), meta={"OBS_ID": OBS_ID})
    write_attitude(root / f"aux/mxt_att_{OBS_ID}.fits", att)
    ang = AngleTable({"TIME": t, "EARTH_ELV": np.full(t.size, 60.0), "SUN_ANGLE": np.full(t.size, 90.0),
                      "MOON_ANGLE": np.full(t.size, 90.0)}, meta={"OBS_ID": OBS_ID})  # fmt: skip
    write_angles(root / f"aux/mxt_ang_{OBS_ID}.fits", ang)
    week = int(week_of(T0))
    write_saa(root / f"saa/mxt_saa_w{week}.fits", SAAIntervals({"START": np.zeros(0), "STOP": np.zeros(0)}), week)
    manifest = {
        "obs_id": OBS_ID, "object": "TOY", "ra_nom": 150.0, "dec_nom": 30.0, "roll_nom": 0.0,
        "tstart": T0, "tstop": T0 + n_frames * C.FRAME_TIME_S, "trigger_time": None,
        "files": {"l1": files, "att": f"aux/mxt_att_{OBS_ID}.fits", "ang": f"aux/mxt_ang_{OBS_ID}.fits",
                  "saa": [f"saa/mxt_saa_w{week}.fits"]},
    }  # fmt: skip
    (root / "dataset.json").write_text(json.dumps(manifest, indent=1))
    truth = {"sources": []}
    (root / "truth.json").write_text(json.dumps(truth))
    return manifest
