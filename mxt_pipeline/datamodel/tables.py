"""Thin domain classes over astropy Tables, tied to the product formats.

A :class:`TableModel` owns an :class:`astropy.table.Table` whose columns follow one HDU
of a product spec.  It gives every domain object the same small interface: construct
from columns, check them, convert to and from plain tables, sort in time, select rows.
Algorithms work on ``obj.table`` (or plain arrays); only :mod:`mxt_pipeline.io` touches
files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
from astropy.table import Table

from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io.formats import get_spec
from mxt_pipeline.io.spec import HDUSpec

__all__ = ["TableModel"]


class TableModel:
    """Base class of the table-backed domain objects.

    Subclasses set ``CONTENT`` and ``EXTNAME`` (the product HDU they mirror).
    """

    CONTENT: ClassVar[str]
    EXTNAME: ClassVar[str]

    def __init__(self, table: Table | Mapping[str, Any] | None = None, *, meta: Mapping[str, Any] | None = None):
        hspec = self.hdu_spec()
        if table is None:
            table = self.empty_table()
        elif not isinstance(table, Table):
            table = Table(dict(table))
        missing = [c.name for c in hspec.columns if c.required and c.name not in table.colnames]
        if missing:
            raise MXTInputError(f"{type(self).__name__}: columns missing: {missing}", hdu=self.EXTNAME)
        # Keep the declared column order and dtypes; extra columns are dropped on write.
        cols = {}
        for c in hspec.columns:
            if c.name in table.colnames:
                arr = np.asarray(table[c.name])
                cols[c.name] = arr if c.is_string else arr.astype(c.dtype, copy=False)
        self.table = Table(cols, copy=False)
        self.meta: dict[str, Any] = dict(meta or {})

    @classmethod
    def hdu_spec(cls) -> HDUSpec:
        """The spec of the HDU this class mirrors."""
        return get_spec(cls.CONTENT).hdu(cls.EXTNAME)

    @classmethod
    def empty_table(cls) -> Table:
        """A zero-row table with the declared columns and dtypes."""
        cols = {}
        for c in cls.hdu_spec().columns:
            shape = (0,) if c.repeat == 1 or c.is_string else (0, c.repeat)
            cols[c.name] = np.zeros(shape, dtype=c.dtype)
        return Table(cols)

    @classmethod
    def from_columns(cls, meta: Mapping[str, Any] | None = None, **columns: Any) -> Self:
        """Build from column arrays given as keyword arguments."""
        return cls(Table(columns), meta=meta)

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, name: str) -> np.ndarray:
        return np.asarray(self.table[name])

    def select(self, mask: np.ndarray) -> Self:
        """A new object with the rows where ``mask`` is true (meta copied)."""
        out = type(self).__new__(type(self))
        out.table = self.table[np.asarray(mask)]
        out.meta = dict(self.meta)
        for key, value in self.__dict__.items():
            if key not in ("table", "meta"):
                out.__dict__[key] = value
        return out

    def sorted_by_time(self) -> Self:
        """A copy sorted by TIME (stable, so equal times keep their order)."""
        order = np.argsort(self["TIME"], kind="stable")
        return self.select(order)

    def to_table(self) -> Table:
        """A copy of the table."""
        return self.table.copy()
