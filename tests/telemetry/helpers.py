"""Comparison of L1 passes and attitude tables, column by column, bit for bit."""

from __future__ import annotations

import numpy as np

from mxt_pipeline.datamodel import Attitude, RawHits


def assert_same_pass(a: RawHits, b: RawHits) -> None:
    assert a.table.colnames == b.table.colnames
    for c in a.table.colnames:
        x, y = np.asarray(a[c]), np.asarray(b[c])
        assert x.dtype.kind == y.dtype.kind and x.dtype.itemsize == y.dtype.itemsize, c
        assert np.array_equal(x, y), c
    assert a.gti == b.gti
    assert {k: v for k, v in a.meta.items() if k != "FILE"} == {k: v for k, v in b.meta.items() if k != "FILE"}


def assert_same_attitude(a: Attitude, b: Attitude) -> None:
    for c in ("TIME", "QPARAM", "RA", "DEC", "ROLL"):
        assert np.array_equal(np.asarray(a[c]).ravel(), np.asarray(b[c]).ravel()), c
