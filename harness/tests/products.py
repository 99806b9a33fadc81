"""Small products written with the I/O layer, for the harness's own tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.io import write_product

T0 = 3.0e8


def event_columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Columns of an L2 EVENTS table with ``n`` plausible events, sorted in time."""
    rng = np.random.default_rng(seed)
    t = np.sort(T0 + rng.uniform(0.0, 1000.0, n))
    rawy = rng.integers(0, C.N_PIX, n)
    rawz = rng.integers(0, C.N_PIX, n)
    energy = rng.uniform(0.3, 9.0, n)
    return {
        "TIME": t,
        "FRAME": ((t - T0) / C.FRAME_TIME_S).astype(np.int32),
        "RAWY": rawy.astype(np.int16),
        "RAWZ": rawz.astype(np.int16),
        "DETY": (rawy - 127.5).astype(np.float32),
        "DETZ": (rawz - 127.5).astype(np.float32),
        "X": (rawy + 128.0).astype(np.float32),
        "Y": (rawz + 128.0).astype(np.float32),
        "RA": 150.0 + (rawy - 127.5) * 3.77e-3,
        "DEC": 30.0 + (rawz - 127.5) * 3.77e-3,
        "PHA": (100 + energy * 200).astype(np.int32),
        "PI": np.floor(energy * 100).astype(np.int16),
        "ENERGY": energy.astype(np.float32),
        "PATTERN": rng.integers(0, 5, n).astype(np.int16),
        "MULTIPLICITY": rng.integers(1, 4, n).astype(np.int16),
        "STATUS": np.zeros(n, np.int32),
    }


def write_events_file(path: Path, columns: dict[str, np.ndarray] | None = None, *, n: int = 200, seed: int = 0,
                      header: dict[str, Any] | None = None, gti=((T0, T0 + 1000.0),)) -> Path:  # fmt: skip
    """An L2 event file (EVENTS, GTI, GAPS)."""
    cols = columns if columns is not None else event_columns(n, seed)
    gti_arr = np.asarray(gti, float).reshape(-1, 2)
    return write_product(
        path,
        "MXT_L2_EVT",
        {
            "EVENTS": cols,
            "GTI": {"START": gti_arr[:, 0], "STOP": gti_arr[:, 1]},
            "GAPS": {"START": np.zeros(0), "STOP": np.zeros(0), "ORIGIN": np.zeros(0, "U10")},
        },
        header={"OBS_ID": "00000042", "RA_NOM": 150.0, "DEC_NOM": 30.0, **(header or {})},
        hdu_headers={"EVENTS": {"FRAMETIM": C.FRAME_TIME_S, "ONTIME": 1000.0, "LIVETIME": 990.0, "EXPOSURE": 980.0}},
        tstart=float(gti_arr[0, 0]),
        tstop=float(gti_arr[-1, 1]),
    )


def srclist_columns(ra, dec, r90) -> dict[str, np.ndarray]:
    """SRCLIST columns for sources at (ra, dec) with 90 % radii ``r90`` (arcsec)."""
    ra = np.atleast_1d(np.asarray(ra, float))
    dec = np.atleast_1d(np.asarray(dec, float))
    n = ra.size
    r90 = np.broadcast_to(np.asarray(r90, np.float32), (n,)).copy()
    return {
        "SRC_ID": np.arange(1, n + 1, dtype=np.int32),
        "RA": ra,
        "DEC": dec,
        "ERR_R68": (r90 * 0.66).astype(np.float32),
        "ERR_R90": r90,
        "RAWY": np.full(n, 120.0, np.float32),
        "RAWZ": np.full(n, 130.0, np.float32),
        "X": np.full(n, 250.0, np.float32),
        "Y": np.full(n, 260.0, np.float32),
        "OFFAXIS": np.full(n, 3.0, np.float32),
        "COUNTS": np.full(n, 50.0, np.float32),
        "COUNTS_ERR": np.full(n, 7.0, np.float32),
        "RATE": np.full(n, 0.1, np.float32),
        "RATE_ERR": np.full(n, 0.01, np.float32),
        "DET_ML": np.full(n, 40.0, np.float32),
        "QF": np.full(n, 3, np.int16),
        "FLAGS": np.zeros(n, np.int16),
    }


def write_srclist_file(path: Path, columns: dict[str, np.ndarray], bands=((0.3, 2.0), (2.0, 10.0))) -> Path:
    """A MXT-SOP-SKY source list."""
    b = np.asarray(bands, float)
    return write_product(
        path,
        "MXT_SOP_SKY",
        {"SRCLIST": columns, "BANDS": {"BAND_ID": np.arange(1, len(b) + 1), "E_MIN": b[:, 0], "E_MAX": b[:, 1]}},
        header={"OBS_ID": "00000042"},
        hdu_headers={"SRCLIST": {"NBANDS": len(b), "SYSERR": 25.0, "MLTHRESH": 10.0}},
        tstart=T0,
        tstop=T0 + 1000.0,
    )


def campaign_columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """SOURCES columns of a campaign table; float columns may hold NaN."""
    rng = np.random.default_rng(seed)
    found = rng.random(n) < 0.8
    off = np.where(found, rng.gamma(2.0, 10.0, n), np.nan)
    return {
        "RUN": np.arange(n, dtype=np.int32),
        "SRC": np.zeros(n, np.int32),
        "TRUE_RA": rng.uniform(0, 360, n),
        "TRUE_DEC": rng.uniform(-80, 80, n),
        "TRUE_CTS": rng.uniform(10, 1000, n).astype(np.float32),
        "OFFAXIS": rng.uniform(0, 30, n).astype(np.float32),
        "IN_FOV": np.ones(n, bool),
        "FOUND": found,
        "OFFSET": off.astype(np.float32),
        "ERR_R90": np.where(found, 40.0, np.nan).astype(np.float32),
        "OFF_R90": (off / 40.0).astype(np.float32),
        "CTS_RATIO": np.where(found, 1.0, np.nan).astype(np.float32),
        "DET_ML": np.where(found, 30.0, np.nan).astype(np.float32),
    }


def write_campaign_file(path: Path, sources: dict[str, np.ndarray], nruns: int = 1) -> Path:
    runs = {
        "RUN": np.arange(nruns, dtype=np.int32),
        "SEED": np.arange(nruns, dtype=np.int64),
        "STATUS": np.array(["OK"] * nruns),
        "N_TRUE": np.ones(nruns, np.int32),
        "N_FOUND": np.ones(nruns, np.int32),
        "N_FALSE": np.zeros(nruns, np.int32),
        "LC_CHI2R": np.full(nruns, np.nan, np.float32),
        "LINE_RES": np.full(nruns, np.nan, np.float32),
    }
    return write_product(path, "MXT_CAMPAIGN", {"SOURCES": sources, "RUNS": runs},
                         header={"CASE": "test", "NRUNS": nruns, "CSEED": 1})  # fmt: skip
