"""Write a small simulated dataset directory (the layout of the dataset contract).

Point source + calibration-line background + a hot pixel, observed for 300 s with a
slowly drifting attitude; three overlapping passes numbered out of time order, a
telemetry gap, an SAA passage in a weekly SAA file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline import geometry as co
from mxt_pipeline.datamodel import GTI, AngleTable, Attitude, RawHits, SAAIntervals, week_of
from mxt_pipeline.io.products import write_angles, write_attitude, write_raw_hits, write_saa

from .linegen import make_line_hits

WEEK = 7 * 86400.0
T0 = 400 * WEEK + 5000.0
DURATION = 300.0
POINTING = (150.0, -30.0, 40.0)
SOURCE = (150.0 + 5.0 / 60.0 / np.cos(np.radians(30.0)), -30.0 - 8.0 / 60.0)
HOT_PIXEL = (200, 17)
SAA_PASSAGE = (T0 + 100.0, T0 + 130.0)
#: Pass id -> coverage [start, stop) relative to T0 (out of time order; overlaps; a
#: telemetry gap 260-270 s).
PASSES = {3: (0.0, 150.0), 1: (120.0, 260.0), 2: (270.0, 300.0)}


def simulate(calset, seed=0, n_source=6000, n_background=4000):
    """Hits of the whole observation (dict of columns), the attitude and the angles."""
    rng = np.random.default_rng(seed)
    n_frames = int(round(DURATION / C.FRAME_TIME_S))
    ts = np.arange(T0 - 5.0, T0 + DURATION + 6.0, 1.0)
    drift = (ts - T0) / DURATION * 20.0 / 3600.0  # 20" drift in Dec
    att = Attitude.from_pointing(ts, np.full(ts.size, POINTING[0]), POINTING[1] + drift, np.full(ts.size, POINTING[2]),
                                 meta={"OBS_ID": "SIM0001"})  # fmt: skip
    ang = AngleTable.from_columns(
        meta={"OBS_ID": "SIM0001"}, TIME=ts, EARTH_ELV=np.full(ts.size, 50.0),
        SUN_ANGLE=np.full(ts.size, 100.0), MOON_ANGLE=np.full(ts.size, 60.0),
    )  # fmt: skip
    # Source photons: RAW position of the source at the frame time + a 1.5-pixel scatter.
    fr_s = np.sort(rng.integers(0, n_frames, n_source))
    t_s = T0 + fr_s * C.FRAME_TIME_S
    y0, z0 = co.radec_to_raw(np.full(n_source, SOURCE[0]), np.full(n_source, SOURCE[1]), t_s, att, calset.teldef)
    ys = y0 + 1.5 * rng.standard_normal(n_source)
    zs = z0 + 1.5 * rng.standard_normal(n_source)
    e_s = rng.choice([1.4867, 5.895], n_source)
    # Background: lines uniformly over the detector.
    fr_b = np.sort(rng.integers(0, n_frames, n_background))
    yb = rng.uniform(-0.5, 255.5, n_background)
    zb = rng.uniform(-0.5, 255.5, n_background)
    e_b = rng.choice([1.4867, 5.895], n_background)
    hits, _ = make_line_hits(np.r_[e_s, e_b], n_source + n_background, rng, calset,
                             positions=(np.r_[ys, yb], np.r_[zs, zb]), frames=np.r_[fr_s, fr_b], t0=T0)  # fmt: skip
    # A hot pixel firing (0.2 keV) in 30% of the frames, where no photon hit it.
    hot_frames = np.flatnonzero(rng.random(n_frames) < 0.3)
    taken = set(hits["FRAME"][(hits["RAWY"] == HOT_PIXEL[0]) & (hits["RAWZ"] == HOT_PIXEL[1])].tolist())
    hot_frames = np.array([f for f in hot_frames if f not in taken], dtype=np.int64)
    gy = calset.gainoff.gain[HOT_PIXEL[0]]
    hot_pha = np.rint(calset.gainoff.offset[HOT_PIXEL[0]] + 200.0 / gy).astype(np.int64)
    extra = {
        "TIME": T0 + hot_frames * C.FRAME_TIME_S,
        "FRAME": hot_frames,
        "RAWY": np.full(hot_frames.size, HOT_PIXEL[0]),
        "RAWZ": np.full(hot_frames.size, HOT_PIXEL[1]),
        "PHA": np.full(hot_frames.size, hot_pha),
    }
    allh = {k: np.r_[hits[k], extra[k]] for k in hits}
    order = np.lexsort((allh["RAWZ"], allh["RAWY"], allh["FRAME"]))
    allh = {k: v[order] for k, v in allh.items()}
    return allh, att, ang


def split_passes(hits, passes=PASSES):
    """One RawHits per pass: the hits of the frames inside its coverage."""
    out = {}
    for pid, (a, b) in passes.items():
        sel = (hits["TIME"] >= T0 + a) & (hits["TIME"] < T0 + b)
        out[pid] = RawHits({k: v[sel] for k, v in hits.items()}, gti=GTI([T0 + a], [T0 + b]),
                           meta={"OBS_ID": "SIM0001", "PASS_ID": pid, "STATION": "KOUROU", "OBJECT": "SIMSRC",
                                 "FRAMETIM": C.FRAME_TIME_S})  # fmt: skip
    return out


def write_dataset(root: Path, calset, seed=0, l1_order=(3, 1, 2), empty=False) -> dict:
    """Write the dataset directory; return the manifest."""
    root = Path(root)
    (root / "l1").mkdir(parents=True, exist_ok=True)
    (root / "aux").mkdir(exist_ok=True)
    (root / "saa").mkdir(exist_ok=True)
    hits, att, ang = simulate(calset, seed)
    if empty:
        hits = {k: v[:0] for k, v in hits.items()}
    l1 = []
    for pid, rh in split_passes(hits).items():
        name = f"l1/mxt_l1_raw_SIM0001_p{pid:02d}.fits"
        write_raw_hits(root / name, rh)
        l1.append((pid, name))
    by_id = dict(l1)
    write_attitude(root / "aux/mxt_att_SIM0001.fits", att)
    write_angles(root / "aux/mxt_ang_SIM0001.fits", ang)
    saa_files = []
    for w in range(int(week_of(T0)), int(week_of(T0 + DURATION)) + 1):
        s = SAAIntervals.from_columns(START=np.array([SAA_PASSAGE[0]]), STOP=np.array([SAA_PASSAGE[1]]))
        name = f"saa/mxt_saa_w{w}.fits"
        write_saa(root / name, s, w)
        saa_files.append(name)
    manifest = {
        "obs_id": "SIM0001",
        "object": "SIMSRC",
        "ra_nom": POINTING[0],
        "dec_nom": POINTING[1],
        "roll_nom": POINTING[2],
        "tstart": T0,
        "tstop": T0 + DURATION,
        "trigger_time": None,
        "files": {
            "l1": [by_id[p] for p in l1_order],
            "att": "aux/mxt_att_SIM0001.fits",
            "ang": "aux/mxt_ang_SIM0001.fits",
            "saa": saa_files,
        },
    }
    (root / "dataset.json").write_text(json.dumps(manifest, indent=1))
    return manifest
