"""Small truth documents, source lists and light curves for the comparison tests."""

from __future__ import annotations

import numpy as np
from astropy.table import Table

T0 = 3.0e8
SPAN = 4000.0


def source(name, ra, dec, *, in_fov=True, counts=1000.0, profile=None, offaxis=5.0):
    return {
        "name": name, "ra": float(ra), "dec": float(dec), "flux": 1e-11, "flux_band": [0.3, 10.0],
        "spectrum": {"model": "powerlaw", "index": 2.0, "nh": 0.05},
        "profile": profile or {"model": "constant"}, "in_fov": in_fov,
        "detectable": bool(in_fov and counts >= 30), "offaxis_arcmin": offaxis if in_fov else 45.0,
        "expected_photons": counts, "photons_on_detector": counts, "photons_detected": counts,
    }  # fmt: skip


def truth(sources, lines=None) -> dict:
    """A valid truth.json document (schema version 1) holding ``sources``."""
    cal = None if not lines else {"lines": [{"energy": e, "rate": 1.0} for e in lines]}
    return {
        "schema": "mxt-sim-truth", "schema_version": 1,
        "software": {"name": "mxt_pipeline", "version": "0.1.0"},
        "seed": 1, "obs_id": "SIM1", "object": "test", "tstart": T0, "tstop": T0 + SPAN, "trigger_time": None,
        "pointing": {"ra": 10.0, "dec": -20.0, "roll": 0.0, "jitter_arcsec": 2.0, "jitter_tau_s": 30.0, "slew": None},
        "orbit": {"altitude_km": 625.0, "inclination_deg": 30.0, "raan_deg": 0.0, "arg_lat_deg": 0.0, "epoch": T0},
        "saa_region": {"lon0": -40.0, "lat0": -25.0, "semi_lon": 50.0, "semi_lat": 22.0},
        "sources": list(sources),
        "background": {"cxb": None, "particle": None, "calibration": cal},
        "detector": {},
        "passes": [{"pass_id": 1, "station": "GS-A", "start": T0, "stop": T0 + SPAN, "lost": [],
                    "truncate_last_frame": False}],
        "bad_time": {"saa": [], "earth": [], "telemetry": []},
        "caldb": {"root": None, "date": "2026-07-06", "files": {}},
        "counts": {"hits": 10, "frames": 5, "hits_per_pass": {"1": 10}},
        "scenario": {},
    }  # fmt: skip


def offset_position(ra, dec, north_arcsec=0.0, east_arcsec=0.0):
    """Position displaced by small offsets (flat-sky approximation, exact to << 0.01")."""
    d = dec + north_arcsec / 3600.0
    r = ra + east_arcsec / 3600.0 / np.cos(np.radians(0.5 * (dec + d)))
    return float(r), float(d)


def srclist(rows) -> Table:
    """A SRCLIST table: rows of (ra, dec, err_r90, counts, counts_err, det_ml)."""
    n = len(rows)
    cols = np.array(rows, float).reshape(n, 6)
    return Table({
        "SRC_ID": np.arange(1, n + 1, dtype=np.int32), "RA": cols[:, 0], "DEC": cols[:, 1],
        "ERR_R68": (cols[:, 2] * 0.6).astype(np.float32), "ERR_R90": cols[:, 2].astype(np.float32),
        "RAWY": np.full(n, 128.0, np.float32), "RAWZ": np.full(n, 128.0, np.float32),
        "X": np.full(n, 1000.0, np.float32), "Y": np.full(n, 1000.0, np.float32),
        "OFFAXIS": np.full(n, 5.0, np.float32), "COUNTS": cols[:, 3:4].astype(np.float32),
        "COUNTS_ERR": cols[:, 4:5].astype(np.float32), "RATE": (cols[:, 3] / SPAN).astype(np.float32),
        "RATE_ERR": (cols[:, 4] / SPAN).astype(np.float32), "DET_ML": cols[:, 5].astype(np.float32),
        "RATE_BAND": (cols[:, 3:4] / SPAN).astype(np.float32), "RATE_BAND_ERR": (cols[:, 4:5] / SPAN).astype(np.float32),
        "QF": np.full(n, 3, np.int16), "FLAGS": np.zeros(n, np.int16),
    })  # fmt: skip


def poisson_times(profile, norm: float, rng, t0=T0, span=SPAN, dt=1.0) -> np.ndarray:
    """Arrival times of rate ``norm * profile.value(t)`` (piecewise constant on dt steps)."""
    edges = np.arange(t0, t0 + span + 0.5 * dt, dt)
    mid = 0.5 * (edges[:-1] + edges[1:])
    n = rng.poisson(norm * np.asarray(profile.value(mid), float) * dt)
    return np.sort(np.repeat(edges[:-1], n) + rng.random(n.sum()) * dt)


def light_curve_of(times, gti, n_bins=20, src_id=1):
    """A LightCurve of ``n_bins`` equal bins over the GTI span (no background)."""
    from mxt_pipeline.lightcurve.rates import light_curve

    edges = np.linspace(gti.tstart, gti.tstop, n_bins + 1)
    meta = {"OBS_ID": "SIM1", "SRC_ID": src_id, "RA_OBJ": 10.0, "DEC_OBJ": -20.0, "E_MIN": 0.2, "E_MAX": 10.0,
            "BINNING": "FIXED"}  # fmt: skip
    return light_curve(times[gti.contains(times)], edges[:-1], edges[1:], gti, meta=meta)
