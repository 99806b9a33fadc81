"""Declarative descriptions of the FITS products: columns, keywords, HDUs, products.

A :class:`ProductSpec` is the single source of truth for one product type: the writer
builds HDUs from it, the reader checks files against it, the pandera schemas and the
header checks of ``mxt validate`` are derived from it, and ``docs/formats.md`` is
generated from it (a test keeps the document in sync).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ColumnSpec", "KeywordSpec", "HDUSpec", "ProductSpec", "tform_dtype"]

_TFORM_RE = re.compile(r"^(\d*)([LXBIJKAEDCM])(\d*)$")

_TFORM_TO_DTYPE = {
    "L": np.dtype(bool),
    "B": np.dtype(np.uint8),
    "I": np.dtype(np.int16),
    "J": np.dtype(np.int32),
    "K": np.dtype(np.int64),
    "E": np.dtype(np.float32),
    "D": np.dtype(np.float64),
}


def tform_dtype(tform: str) -> tuple[np.dtype, int]:
    """Return the numpy dtype and repeat count of a FITS binary-table TFORM.

    Parameters
    ----------
    tform : str
        A TFORM value such as ``'D'``, ``'4D'``, ``'10A'``.

    Returns
    -------
    (numpy.dtype, int)
        Element dtype (``'U'`` string dtype of the repeat length for ``A``) and repeat.
    """
    m = _TFORM_RE.match(tform.strip().upper())
    if not m:
        raise ValueError(f"unsupported TFORM {tform!r}")
    repeat = int(m.group(1)) if m.group(1) else 1
    code = m.group(2)
    if code == "A":
        # 'rAw' (e.g. the CIF's 630A70) is an array of r/w strings of w characters.
        width = int(m.group(3)) if m.group(3) else repeat
        return np.dtype(f"U{width}"), max(1, repeat // width)
    if m.group(3):
        raise ValueError(f"unsupported TFORM {tform!r}")
    if code not in _TFORM_TO_DTYPE:
        raise ValueError(f"unsupported TFORM {tform!r}")
    return _TFORM_TO_DTYPE[code], repeat


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a binary table.

    Parameters
    ----------
    name : str
        Column name (TTYPE).
    tform : str
        FITS format (TFORM), e.g. ``'D'``, ``'J'``, ``'4D'``, ``'10A'``.
    unit : str or None
        TUNIT, OGIP/FITS unit string.
    description : str
        What the column holds (used in the docs and as the TTYPE comment).
    tlmin, tlmax : float, optional
        Legal limits (TLMINn/TLMAXn; written for integer columns, checked for all).
    allowed : tuple, optional
        The only values allowed (e.g. PATTERN codes, gap origins).
    sorted : bool
        Values must be non-decreasing (TIME of event lists).
    finite : bool
        Floating values must be finite (no NaN, no inf).
    required : bool
        The column must be present.
    """

    name: str
    tform: str
    unit: str | None = None
    description: str = ""
    tlmin: float | None = None
    tlmax: float | None = None
    allowed: tuple[Any, ...] | None = None
    sorted: bool = False
    finite: bool = True
    required: bool = True

    @property
    def dtype(self) -> np.dtype:
        """Element dtype of the column."""
        return tform_dtype(self.tform)[0]

    @property
    def repeat(self) -> int:
        """Number of elements per row (1 for scalar columns and strings)."""
        return tform_dtype(self.tform)[1]

    @property
    def is_integer(self) -> bool:
        return self.dtype.kind in "iu"

    @property
    def is_float(self) -> bool:
        return self.dtype.kind == "f"

    @property
    def is_string(self) -> bool:
        return self.dtype.kind == "U"


@dataclass(frozen=True)
class KeywordSpec:
    """One header keyword.

    Parameters
    ----------
    name : str
        Keyword name.
    type : type
        Python type of the value: ``str``, ``int``, ``float`` or ``bool``
        (an ``int`` value is accepted for ``float``).
    comment : str
        Header comment, also used in the docs.
    required : bool
        The keyword must be present.
    allowed : tuple, optional
        The only values allowed.
    value : Any, optional
        Fixed value the writer sets (and the checker requires).
    """

    name: str
    type: type
    comment: str = ""
    required: bool = True
    allowed: tuple[Any, ...] | None = None
    value: Any = None


@dataclass(frozen=True)
class HDUSpec:
    """One HDU of a product (a binary table unless ``kind='image'``)."""

    extname: str
    description: str
    columns: tuple[ColumnSpec, ...] = ()
    keywords: tuple[KeywordSpec, ...] = ()
    kind: str = "table"
    required: bool = True
    #: When true the table carries the OGIP time keywords (MJDREF, TIMESYS, ...).
    timed: bool = True

    def column(self, name: str) -> ColumnSpec:
        """Return the spec of column ``name`` (KeyError when undeclared)."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


@dataclass(frozen=True)
class ProductSpec:
    """A whole product type: its primary-header content and its HDUs."""

    content: str
    title: str
    description: str
    hdus: tuple[HDUSpec, ...]
    primary_keywords: tuple[KeywordSpec, ...] = field(default=())
    #: Usual file name pattern, for the docs.
    filename: str = ""
    #: When true the primary header carries the OGIP time keywords.
    timed: bool = True

    def hdu(self, extname: str) -> HDUSpec:
        """Return the spec of HDU ``extname`` (KeyError when undeclared)."""
        for h in self.hdus:
            if h.extname == extname:
                return h
        raise KeyError(extname)
