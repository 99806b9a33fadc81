"""The MXT-SOP-SKY source list: its tables and its DS9 region text, in memory.

The columns and tables of the ``MXT_SOP_SKY`` product built from a source table (as
returned by :func:`mxt_pipeline.detect.pipeline.detect_sources`): the SRCLIST HDU (one row per source, sorted by decreasing
DET_ML, SRC_ID from 1, counts and rates summed over the bands), the BANDS HDU listing
the energy bands and the SRCBANDS HDU with the counts and rates of every source in every
band (one row per source and band, so any number of bands fits the fixed format).  An
empty field gives a valid product with zero rows.  :func:`region_text` is the matching
DS9 region file (fk5 circles of radius ERR_R90).  The files themselves are written by
:mod:`mxt_pipeline.io.srclist_product`: this package never opens a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from astropy.table import Table

from mxt_pipeline import constants as C
from mxt_pipeline.detect.bands import EnergyBand
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io.formats import get_spec

__all__ = [
    "SRCLIST_COLUMNS",
    "BAND_COLUMNS",
    "empty_source_table",
    "bands_table",
    "source_bands_table",
    "VECTOR_COLUMNS",
    "vector_layout",
    "region_text",
    "FLAG_OFF_CHIP",
    "FLAG_UNEXPOSED",
    "FLAG_OUT_OF_FOV",
    "FLAG_PAIR",
    "NOT_IN_FIELD",
    "position_flags",
]

#: FLAGS bit: the fitted position lies outside the chip's 256 x 256 pixels (off the field).
FLAG_OFF_CHIP = 1
#: FLAGS bit: on the chip, but no exposure within 1 pixel of the position (masked area).
FLAG_UNEXPOSED = 2
#: FLAGS bit: an out-of-field source, its spot off the detection grid, seen through its
#: cross arms and fitted so that its arms are in the model of the in-field sources
#: (:mod:`mxt_pipeline.detect.outfield`); never an in-field source (QF 0).
FLAG_OUT_OF_FOV = 4
#: FLAGS bit: the fainter member of a confused pair, added by the pair test
#: (:mod:`mxt_pipeline.detect.confusion`); its DET_ML may be below the list's MLTHRESH.
FLAG_PAIR = 8
#: The FLAGS bits that say a position is not an in-field one (a PAIR companion is).
NOT_IN_FIELD = FLAG_OFF_CHIP | FLAG_UNEXPOSED | FLAG_OUT_OF_FOV

#: Columns of the SRCLIST HDU, in the order of the product spec.
SRCLIST_COLUMNS = tuple(c.name for c in get_spec("MXT_SOP_SKY").hdu("SRCLIST").columns)
#: Per-band vector columns of the SRCLIST HDU.
VECTOR_COLUMNS = ("COUNTS", "COUNTS_ERR")
#: Per-band columns of a source table (S, B) and the SRCBANDS column each one fills.
BAND_COLUMNS = {"COUNTS": "COUNTS", "COUNTS_ERR": "COUNTS_ERR", "RATE_BAND": "RATE", "RATE_BAND_ERR": "RATE_ERR"}


def position_flags(
    rawy: np.ndarray,
    rawz: np.ndarray,
    dety: np.ndarray | None = None,
    detz: np.ndarray | None = None,
    *,
    y_edges: np.ndarray | None = None,
    z_edges: np.ndarray | None = None,
    exposure: np.ndarray | None = None,
    n_pix: int = C.N_PIX,
) -> np.ndarray:
    """FLAGS of fitted source positions: where they lie against the sensitive area.

    Parameters
    ----------
    rawy, rawz : ndarray
        Fitted positions in RAW pixels (pixel centres at integers, the chip spans
        ``[-0.5, n_pix - 0.5]``).
    dety, detz : ndarray, optional
        The same positions on the detection grid (DET pixels).
    y_edges, z_edges : ndarray, optional
        Edges of the detection grid.
    exposure : ndarray (ny, nz), optional
        Relative exposure of the grid (0: masked or off the chip).  Without it (or
        without the DET positions) only :data:`FLAG_OFF_CHIP` is set.
    n_pix : int
        Chip size in pixels.

    Returns
    -------
    ndarray of int16
        :data:`FLAG_OFF_CHIP` (1) when the position is off the chip (a source off the
        field of view, fitted through its cross arms), :data:`FLAG_UNEXPOSED` (2) when it
        is on the chip but every grid cell within 1 DET pixel of it has zero exposure
        (a masked block of bad pixels or columns), 0 otherwise; a non-finite position
        is off the chip.
    """
    ry = np.atleast_1d(np.asarray(rawy, dtype=float))
    rz = np.atleast_1d(np.asarray(rawz, dtype=float))
    lo, hi = -0.5, n_pix - 0.5
    on = np.isfinite(ry) & np.isfinite(rz) & (ry >= lo) & (ry <= hi) & (rz >= lo) & (rz <= hi)
    flags = np.where(on, 0, FLAG_OFF_CHIP).astype(np.int16)
    if exposure is None or dety is None or detz is None or y_edges is None or z_edges is None or not on.any():
        return flags
    g = np.asarray(exposure, dtype=float)
    ye, ze = np.asarray(y_edges, dtype=float), np.asarray(z_edges, dtype=float)
    y = np.atleast_1d(np.asarray(dety, dtype=float))
    z = np.atleast_1d(np.asarray(detz, dtype=float))
    step_y, step_z = ye[1] - ye[0], ze[1] - ze[0]
    for i in np.flatnonzero(on):
        # Grid cells overlapping the square of half-side 1 DET pixel around the position.
        a = int(np.clip(np.floor((y[i] - 1.0 - ye[0]) / step_y), 0, g.shape[0] - 1))
        b = int(np.clip(np.floor((y[i] + 1.0 - ye[0]) / step_y), 0, g.shape[0] - 1))
        c = int(np.clip(np.floor((z[i] - 1.0 - ze[0]) / step_z), 0, g.shape[1] - 1))
        d = int(np.clip(np.floor((z[i] + 1.0 - ze[0]) / step_z), 0, g.shape[1] - 1))
        if not np.any(g[a : b + 1, c : d + 1] > 0):
            flags[i] |= FLAG_UNEXPOSED
    return flags


def empty_source_table(n_bands: int) -> Table:
    """A zero-row source table: every SRCLIST column and the per-band rates (S, B)."""
    cols = {}
    for c in get_spec("MXT_SOP_SKY").hdu("SRCLIST").columns:
        shape = (0, n_bands) if c.name in VECTOR_COLUMNS else (0,)
        cols[c.name] = np.zeros(shape, dtype=c.dtype)
    for name in ("RATE_BAND", "RATE_BAND_ERR"):
        cols[name] = np.zeros((0, n_bands), dtype=np.float32)
    return Table(cols)


def bands_table(bands: Sequence[EnergyBand], background: Mapping[str, Sequence[float]] | None = None) -> Table:
    """The BANDS HDU: BAND_ID (1-based), E_MIN, E_MAX (keV), and the fitted background.

    ``background`` (the source table's meta) gives BKG_SKY and BKG_PART per band (counts
    per pixel of full exposure: the vignetted sky component on the optical axis and the
    flat particle component); the columns are left out without it.
    """
    out = {
        "BAND_ID": np.arange(1, len(bands) + 1, dtype=np.int16),
        "E_MIN": np.array([b.e_min for b in bands], dtype=np.float32),
        "E_MAX": np.array([b.e_max for b in bands], dtype=np.float32),
    }
    for key in ("BKG_SKY", "BKG_PART"):
        if background is not None and background.get(key) is not None:
            values = np.asarray(background[key], dtype=float).ravel()
            if values.size != len(bands) or np.any(~np.isfinite(values)) or np.any(values < 0):
                raise MXTInputError(f"{key} needs one finite value >= 0 per band, got {values.tolist()}",
                                    hdu="BANDS", column=key)
            out[key] = values.astype(np.float32)
    return Table(out)


def source_bands_table(table: Table, n_bands: int) -> Table:
    """The SRCBANDS HDU: one row per source and band (sources in table order).

    The per-band columns of ``table`` (:data:`BAND_COLUMNS`, each (S, B)) are unrolled
    source by source: row ``s * n_bands + b`` holds band ``b + 1`` of source ``s``.
    """
    missing = [c for c in BAND_COLUMNS if c not in table.colnames]
    if missing:
        raise MXTInputError(f"source table lacks the per-band columns {missing}", hdu="SRCBANDS")
    n = len(table)
    out = {
        "SRC_ID": np.repeat(np.asarray(table["SRC_ID"], dtype=np.int32), n_bands),
        "BAND_ID": np.tile(np.arange(1, n_bands + 1, dtype=np.int16), n),
    }
    for name, target in BAND_COLUMNS.items():
        values = np.asarray(table[name], dtype=float)
        if values.size != n * n_bands:
            raise MXTInputError(f"{name} holds {values.size} values for {n} sources x {n_bands} bands",
                                hdu="SRCBANDS", column=name)
        out[target] = values.reshape(n * n_bands).astype(np.float32)
    return Table(out)


def vector_layout(table: Table, n_bands: int) -> dict[str, np.ndarray]:
    """Per-band columns shaped as the registered format declares them.

    The COUNTS and COUNTS_ERR columns of the table hold one value per band.  When the
    registered format declares them with as many elements as there are bands they are
    written as vectors; when it declares scalars (the MXT-SOP-SKY format: the bands are
    in SRCBANDS), the band sums are written, errors added in quadrature.
    """
    spec = get_spec("MXT_SOP_SKY").hdu("SRCLIST")
    out = {}
    for name in VECTOR_COLUMNS:
        values = np.asarray(table[name], dtype=float).reshape(len(table), n_bands)
        repeat = spec.column(name).repeat
        if repeat == n_bands:
            out[name] = values if repeat > 1 else values[:, 0]
        elif repeat == 1:
            out[name] = np.sqrt((values**2).sum(axis=1)) if name.endswith("_ERR") else values.sum(axis=1)
        else:
            raise MXTInputError(f"{name} holds {n_bands} bands but the format declares {repeat}", column=name)
    return out


def region_text(table: Table, color: str = "green") -> str:
    """DS9 region file text: one fk5 circle of radius ERR_R90 per source."""
    lines = [
        "# Region file format: DS9 version 4.1",
        "# MXT source list: circles of radius ERR_R90 (90% incl. systematic)",
        f'global color={color} dashlist=8 3 width=1 font="helvetica 10 normal" select=1 '
        "highlite=1 dash=0 fixed=0 edit=1 move=1 delete=1 include=1 source=1",
        "fk5",
    ]
    for row in table:
        ra, dec, r90 = float(row["RA"]), float(row["DEC"]), float(row["ERR_R90"])
        if not (np.isfinite(ra) and np.isfinite(dec) and np.isfinite(r90)):
            lines.append(f"# source {int(row['SRC_ID'])}: no sky position")
            continue
        lines.append(
            f'circle({ra:.6f},{dec:+.6f},{r90:.2f}") # text={{{int(row["SRC_ID"])}}} '
            f"tag={{DET_ML={float(row['DET_ML']):.1f}}}"
        )
    return "\n".join(lines) + "\n"
