"""Gather campaign run records into the results tables (product MXT_CAMPAIGN).

A run record (see :mod:`mxt_pipeline.campaign.runner`) holds, under ``result``, what
:func:`mxt_pipeline.campaign.truth_match.compare_run` returns: ``sources`` (one dict per
simulated source), ``n_found``, ``n_false``, ``lc_chi2_red`` and ``line_residual_ev``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from mxt_pipeline.io.fits import read_product, write_product

__all__ = ["records_to_tables", "write_results", "read_results"]

_SOURCE_KEYS = {
    "TRUE_RA": ("true_ra", np.nan),
    "TRUE_DEC": ("true_dec", np.nan),
    "TRUE_CTS": ("true_counts", 0.0),
    "OFFAXIS": ("offaxis_arcmin", 0.0),
    "IN_FOV": ("in_fov", False),
    "FOUND": ("found", False),
    "OFFSET": ("offset_arcsec", np.nan),
    "ERR_R90": ("err_r90_arcsec", np.nan),
    "OFF_R90": ("offset_r90", np.nan),
    "CTS_RATIO": ("counts_ratio", np.nan),
    "DET_ML": ("det_ml", np.nan),
}


def _num(value: Any, default: float) -> float:
    return default if value is None else value


def records_to_tables(records: Sequence[dict[str, Any]]) -> tuple[Table, Table]:
    """Return the (SOURCES, RUNS) tables of run records, sorted by run index."""
    src_rows: dict[str, list] = {k: [] for k in ("RUN", "SRC", *_SOURCE_KEYS)}
    run_rows: dict[str, list] = {k: [] for k in ("RUN", "SEED", "STATUS", "N_TRUE", "N_FOUND", "N_FALSE", "LC_CHI2R", "LINE_RES")}
    for rec in sorted(records, key=lambda r: r["index"]):
        res = rec.get("result") or {}
        sources = res.get("sources", [])
        for k, src in enumerate(sources):
            src_rows["RUN"].append(rec["index"])
            src_rows["SRC"].append(k)
            for col, (key, default) in _SOURCE_KEYS.items():
                src_rows[col].append(_num(src.get(key), default))
        run_rows["RUN"].append(rec["index"])
        run_rows["SEED"].append(rec["seed"])
        run_rows["STATUS"].append(rec["status"])
        run_rows["N_TRUE"].append(sum(1 for s in sources if s.get("in_fov", False)))
        run_rows["N_FOUND"].append(int(res.get("n_found", 0)))
        run_rows["N_FALSE"].append(int(res.get("n_false", 0)))
        run_rows["LC_CHI2R"].append(_num(res.get("lc_chi2_red"), np.nan))
        run_rows["LINE_RES"].append(_num(res.get("line_residual_ev"), np.nan))
    sources = Table({k: np.asarray(v) for k, v in src_rows.items()})
    runs = Table({k: np.asarray(v) for k, v in run_rows.items()})
    for col, dtype in (("IN_FOV", bool), ("FOUND", bool), ("RUN", np.int32), ("SRC", np.int32)):
        sources[col] = np.asarray(sources[col], dtype=dtype)
    for col in ("TRUE_RA", "TRUE_DEC"):
        sources[col] = np.asarray(sources[col], dtype=float)
    runs["STATUS"] = np.asarray(runs["STATUS"], dtype="U16")
    return sources, runs


def write_results(path: str | os.PathLike[str], records: Sequence[dict[str, Any]], case: str, seed: int) -> Path:
    """Write the results tables of a campaign (product MXT_CAMPAIGN)."""
    sources, runs = records_to_tables(records)
    return write_product(
        path,
        "MXT_CAMPAIGN",
        {"SOURCES": sources, "RUNS": runs},
        header={"CASE": case, "NRUNS": len(runs), "CSEED": int(seed)},
    )


def read_results(path: str | os.PathLike[str]) -> tuple[Table, Table, dict[str, Any]]:
    """Read a campaign results file: (SOURCES, RUNS, {CASE, NRUNS, CSEED})."""
    prod = read_product(path, "MXT_CAMPAIGN")
    hdr = prod.primary_header
    return prod.table("SOURCES"), prod.table("RUNS"), {k: hdr[k] for k in ("CASE", "NRUNS", "CSEED")}
