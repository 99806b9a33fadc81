"""Write the ``MXT_SOP_SKY`` source-list product and its DS9 region file (the I/O layer).

The tables come from :mod:`mxt_pipeline.detect.srclist` (in memory); this module writes
them atomically: the SRCLIST, BANDS and SRCBANDS HDUs through
:func:`mxt_pipeline.io.fits.write_product`, the region text beside it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.table import Table

from mxt_pipeline.detect.bands import EnergyBand
from mxt_pipeline.detect.srclist import (
    SRCLIST_COLUMNS,
    VECTOR_COLUMNS,
    bands_table,
    region_text,
    source_bands_table,
    vector_layout,
)
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io.fits import atomic_write_bytes, write_product

__all__ = ["write_srclist", "write_region"]


def write_srclist(
    path: str | os.PathLike[str],
    table: Table,
    bands: Sequence[EnergyBand],
    *,
    obs_id: str,
    syserr_arcsec: float,
    ml_threshold: float,
    tstart: float | None = None,
    tstop: float | None = None,
    object_name: str | None = None,
) -> Path:
    """Write the MXT_SOP_SKY product (atomically, through the I/O layer).

    Parameters
    ----------
    table : astropy Table
        Source table with at least the SRCLIST columns, COUNTS and COUNTS_ERR per band
        (S, B) and the per-band rates RATE_BAND, RATE_BAND_ERR (S, B), as
        :func:`~mxt_pipeline.detect.pipeline.source_table` gives (extra columns are
        ignored).
    bands : sequence of EnergyBand
        The bands of the COUNTS columns.
    obs_id : str
        Observation identifier.
    syserr_arcsec : float
        Systematic added in quadrature to the radii (SYSERR keyword).
    ml_threshold : float
        DET_ML threshold of the list (MLTHRESH keyword).
    tstart, tstop : float, optional
        Time range of the data (s since MJDREF).
    """
    missing = [c for c in SRCLIST_COLUMNS if c not in table.colnames]
    if missing:
        raise MXTInputError(f"source table lacks columns {missing}", hdu="SRCLIST")
    per_band = source_bands_table(table, len(bands))  # checks the per-band shapes first
    cols = {c: np.asarray(table[c]) for c in SRCLIST_COLUMNS if c not in VECTOR_COLUMNS}
    cols.update(vector_layout(table, len(bands)))
    header = {"OBS_ID": str(obs_id)}
    if object_name:
        header["OBJECT"] = str(object_name)
    return write_product(
        path,
        "MXT_SOP_SKY",
        {"SRCLIST": cols, "BANDS": bands_table(bands, table.meta), "SRCBANDS": per_band},
        header=header,
        hdu_headers={
            "SRCLIST": {
                "NBANDS": len(bands),
                "SYSERR": float(syserr_arcsec),
                "MLTHRESH": float(ml_threshold),
            }
        },
        tstart=tstart,
        tstop=tstop,
    )


def write_region(path: str | os.PathLike[str], table: Table, color: str = "green") -> Path:
    """Write the DS9 region file of a source table (atomically)."""
    return atomic_write_bytes(path, region_text(table, color).encode("ascii"))
