"""What every CALDB model shares: CALDB keywords, reading and writing through the I/O layer.

A model class names its code name (``CODE``), its product type (``CONTENT``, declared
in :mod:`mxt_pipeline.io.formats`) and its calibration class (``BCF``/``CPF``).  It
implements ``to_tables()`` (EXTNAME -> columns) and ``from_tables(tables, headers)``;
this base turns them into ``to_fits(path, meta)`` and ``from_fits(path)``, stamping the
HEASARC calibration keywords (CCLS0001, CDTP0001, CCNM0001, CBDn0001, CVSD0001,
CVST0001, CDES0001) on the indexed HDUs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from mxt_pipeline.errors import MXTCalibrationError, MXTSchemaError

__all__ = ["CaldbMeta", "CalibrationModel", "bilinear", "grid_from_nodes", "as_float"]

@dataclass(frozen=True)
class CaldbMeta:
    """The CALDB description of a calibration dataset (its header keywords).

    Parameters
    ----------
    vsd, vst : str
        Validity start date ``YYYY-MM-DD`` and time ``hh:mm:ss`` (UTC): CVSD0001/CVST0001.
    description : str
        CDES0001 (at most 70 characters are indexed).
    boundaries : sequence of str
        CBDn0001 strings such as ``ENERGY(0.2-10)keV`` (at most 9; none: ``NONE``).
    instrume : str
        INSTRUME (``MXT``; ``ECL`` or ``VT`` for the other storage nodes).
    detnam, filter : str, optional
        DETNAM and FILTER keywords (omitted: ``NONE`` in the index).
    extra : mapping
        Other keywords written in every HDU (CREATOR of a generator, ...).
    """

    vsd: str = "2024-06-22"
    vst: str = "00:00:00"
    description: str = ""
    boundaries: tuple[str, ...] = ()
    instrume: str = "MXT"
    detnam: str | None = None
    filter: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def keywords(self, clas: str, codename: str) -> dict[str, Any]:
        """The calibration keywords of one indexed HDU."""
        cbd = list(self.boundaries) or ["NONE"]
        if len(cbd) > 9:
            raise MXTCalibrationError(f"at most 9 boundaries, got {len(cbd)}", keyword="CBD10001")
        out: dict[str, Any] = {
            "CCLS0001": clas,
            "CDTP0001": "DATA",
            "CCNM0001": codename,
        }
        for i, text in enumerate(cbd, start=1):
            out[f"CBD{i}0001"] = text
        out["CVSD0001"] = self.vsd
        out["CVST0001"] = self.vst
        out["CDES0001"] = self.description[:68]
        return out

    @classmethod
    def from_header(cls, header) -> CaldbMeta:
        """The description read back from an HDU header."""
        bounds = []
        for i in range(1, 10):
            text = str(header.get(f"CBD{i}0001", "NONE")).strip()
            if text.upper() != "NONE":
                bounds.append(text)
        return cls(
            vsd=str(header.get("CVSD0001", "")).strip(),
            vst=str(header.get("CVST0001", "00:00:00")).strip(),
            description=str(header.get("CDES0001", "")).strip(),
            boundaries=tuple(bounds),
            instrume=str(header.get("INSTRUME", "MXT")).strip(),
            detnam=header.get("DETNAM"),
            filter=header.get("FILTER"),
        )


class CalibrationModel:
    """Base of the CALDB models: FITS I/O through :mod:`mxt_pipeline.io`.

    Subclasses set ``CODE``, ``CONTENT``, ``CAL_CLASS`` and ``INDEXED`` (the EXTNAMEs
    that carry the calibration keywords, each with its code name) and implement
    :meth:`to_tables` and :meth:`from_tables`.
    """

    CODE: ClassVar[str] = ""
    CONTENT: ClassVar[str] = ""
    CAL_CLASS: ClassVar[str] = "BCF"
    #: EXTNAME -> code name of the HDUs that carry calibration keywords.
    INDEXED: ClassVar[Mapping[str, str]] = {}

    #: The file the model was read from (None when built in memory).
    path: Path | None = None
    #: Its CALDB description (validity, boundaries).
    meta: CaldbMeta | None = None

    # ---- to implement ----------------------------------------------------------------------
    def to_tables(self) -> dict[str, dict[str, np.ndarray]]:
        """The model's tables: EXTNAME -> column name -> array."""
        raise NotImplementedError

    def header_keywords(self) -> dict[str, dict[str, Any]]:
        """Model keywords per EXTNAME (thresholds, DETCHANS, ...); none by default."""
        return {}

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], headers: Mapping[str, Any]) -> Self:
        """Build the model from its tables (EXTNAME -> astropy Table) and headers."""
        raise NotImplementedError

    # ---- FITS ---------------------------------------------------------------------------------
    def to_fits(self, path: str | os.PathLike[str], meta: CaldbMeta | None = None) -> Path:
        """Write the model as a CALDB file (atomically) and return its path.

        Parameters
        ----------
        path : path-like
            The file.
        meta : CaldbMeta, optional
            Validity and description (default: the model's own ``meta``, else a
            validity from the SVOM launch date).
        """
        from mxt_pipeline.io import write_product

        meta = meta or self.meta or CaldbMeta(description=f"MXT {self.CODE}")
        header = {"INSTRUME": meta.instrume}
        if meta.detnam:
            header["DETNAM"] = meta.detnam
        if meta.filter:
            header["FILTER"] = meta.filter
        header.update(meta.extra)
        hdu_headers: dict[str, dict[str, Any]] = {k: dict(v) for k, v in self.header_keywords().items()}
        for extname, code in self.INDEXED.items():
            hdu_headers.setdefault(extname, {}).update(meta.keywords(self.CAL_CLASS, code))
        return write_product(path, self.CONTENT, self.to_tables(), header=header, hdu_headers=hdu_headers)

    @classmethod
    def from_fits(cls, path: str | os.PathLike[str]) -> Self:
        """Read a CALDB file of this model (format and values checked).

        Raises
        ------
        MXTFormatError
            Unreadable file, wrong product type, missing HDU or column (naming them).
        MXTSchemaError
            Values or keywords breaking the format (every violation listed).
        MXTCalibrationError
            Content that is not a valid model (naming file, HDU and column).
        """
        product = read_calibration_product(path, cls.CONTENT)
        tables = {name: hdu.table for name, hdu in product.hdus.items() if hdu.table is not None}
        headers = {name: hdu.header for name, hdu in product.hdus.items()}
        headers["PRIMARY"] = product.primary_header
        try:
            model = cls.from_tables(tables, headers)
        except MXTCalibrationError as exc:
            raise MXTCalibrationError(exc.message, file=path, hdu=exc.hdu, column=exc.column, keyword=exc.keyword) from None
        model.path = Path(path)
        first = next(iter(cls.INDEXED), None)
        model.meta = CaldbMeta.from_header(headers[first]) if first in headers else None
        return model

    @property
    def source(self) -> str | None:
        """The file the model came from, as a string (None in memory)."""
        return None if self.path is None else str(self.path)


def read_calibration_product(path: str | os.PathLike[str], content: str):
    """Read a CALDB file through the I/O layer, checking it against its format.

    The formats accept ``INSTRUME`` of any SVOM storage node (MXT, ECL, VT).
    """
    from mxt_pipeline.io import read_product
    from mxt_pipeline.io.formats import get_spec
    from mxt_pipeline.io.validate import product_violations

    product = read_product(path, content, validate=False)
    violations = product_violations(product, get_spec(content))
    if violations:
        raise MXTSchemaError(f"{len(violations)} schema violation(s) in {content}", violations, file=path)
    return product


# --------------------------------------------------------------------------------------
# Numerical helpers
# --------------------------------------------------------------------------------------


def as_float(x: Any) -> np.ndarray:
    """``x`` as a float64 array."""
    return np.asarray(x, dtype=float)


def grid_from_nodes(x: np.ndarray, y: np.ndarray, values: Sequence[np.ndarray], *, hdu: str,
                    names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:  # fmt: skip
    """Rebuild a full rectangular grid from one row per (x, y) node.

    Returns the sorted distinct ``x`` and ``y`` and each value as an ``(nx, ny)`` array.

    Raises
    ------
    MXTCalibrationError
        When the nodes do not form a complete grid without duplicates.
    """
    xs = np.unique(x)
    ys = np.unique(y)
    if xs.size * ys.size != x.size:
        raise MXTCalibrationError(
            f"{x.size} rows do not form a complete {xs.size} x {ys.size} grid", hdu=hdu, column=names[0]
        )
    ix = np.searchsorted(xs, x)
    iy = np.searchsorted(ys, y)
    flat = ix * ys.size + iy
    if np.unique(flat).size != flat.size:
        raise MXTCalibrationError("duplicate grid nodes", hdu=hdu, column=names[0])
    out = []
    for v in values:
        g = np.empty(xs.size * ys.size)
        g[flat] = v
        out.append(g.reshape(xs.size, ys.size))
    return xs, ys, out


def _axis_weights(grid: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower index and weight of the upper node, clamped to the grid ends."""
    if grid.size == 1:
        return np.zeros(x.shape, dtype=np.intp), np.zeros(x.shape)
    xc = np.clip(x, grid[0], grid[-1])
    i = np.clip(np.searchsorted(grid, xc, side="right") - 1, 0, grid.size - 2)
    w = (xc - grid[i]) / (grid[i + 1] - grid[i])
    return i, w


def bilinear(gx: np.ndarray, gy: np.ndarray, table: np.ndarray, x: Any, y: Any) -> np.ndarray:
    """Bilinear interpolation of ``table[ix, iy, ...]`` at (x, y), clamped at the grid ends.

    ``x`` and ``y`` broadcast together; the result has their broadcast shape followed by
    the trailing axes of ``table`` (several tables on one grid are interpolated with
    one set of weights by stacking them on a last axis).
    """
    x, y = np.broadcast_arrays(as_float(x), as_float(y))
    table = np.asarray(table)
    if gx.size == 1 and gy.size == 1:
        return np.broadcast_to(table[0, 0], x.shape + table.shape[2:]).copy()
    i, wx = _axis_weights(gx, x)
    j, wy = _axis_weights(gy, y)
    i1 = np.minimum(i + 1, gx.size - 1)
    j1 = np.minimum(j + 1, gy.size - 1)
    extra = (slice(None),) * x.ndim + (None,) * (table.ndim - 2)
    wx, wy = wx[extra], wy[extra]
    return (
        table[i, j] * (1 - wx) * (1 - wy)
        + table[i1, j] * wx * (1 - wy)
        + table[i, j1] * (1 - wx) * wy
        + table[i1, j1] * wx * wy
    )
