"""The numpy fast path of the table schemas agrees with pandera.

:func:`mxt_pipeline.io.schemas.check_table` accepts a table without pandera when plain
numpy reductions prove it valid.  It must never accept a table pandera refuses
(soundness: a valid table with one fault injected, of every kind, in every table HDU of
every product), and it must accept the valid tables of the common case (finite numeric
columns), or the fast path would be dead code.
"""

from __future__ import annotations

import numpy as np
import pandera.pandas as pa
import pytest
from astropy.table import Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mxt_pipeline.io.formats import REGISTRY
from mxt_pipeline.io.schemas import _clean, check_table, column_schema, table_to_frame
from mxt_pipeline.io.spec import ColumnSpec, HDUSpec

HDUS = dict(
    sorted({f"{content}[{h.extname}]": h for content, spec in REGISTRY.items() for h in spec.hdus if h.columns}.items())
)
# A table the products do not have (yet): sparse allowed codes, a vector column, a
# column allowed to hold NaN.  The products' own allowed sets are ranges that TLMIN /
# TLMAX already bound, which would leave the allowed-value rule of the fast path untested.
HDUS["synthetic[CODES]"] = HDUSpec(
    "CODES",
    "synthetic",
    columns=(
        ColumnSpec("CODE", "I", "", "sparse codes", allowed=(1, 3, 7)),
        ColumnSpec("VEC", "3E", "", "vector", tlmin=0.0, tlmax=5.0),
        ColumnSpec("OPT", "D", "", "NaN allowed", finite=False),
    ),
)
NUMERIC = [k for k, h in HDUS.items() if not any(c.is_string for c in h.columns)]
PAIRS = (("START", "STOP"), ("E_MIN", "E_MAX"), ("ERR_R68", "ERR_R90"))
FAULTS = ("missing", "below", "above", "nan", "inf", "unsorted", "equal_pair", "swapped_pair", "float_in_int", "not_allowed")


def _pandera_valid(table: Table, hspec) -> bool:
    try:
        column_schema(hspec).validate(table_to_frame(table), lazy=True)
    except pa.errors.SchemaErrors:
        return False
    return True


def _limits(c) -> tuple[float, float]:
    lo = c.tlmin if c.tlmin is not None else -1e3
    hi = c.tlmax if c.tlmax is not None else lo + 2e3
    return lo, hi


@st.composite
def valid_tables(draw, hspec, min_rows: int = 0):
    """A valid table of the HDU: values inside and exactly at the limits."""
    n = draw(st.integers(min_rows, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cols = {}
    for c in hspec.columns:
        shape = (n,) if c.repeat == 1 else (n, c.repeat)
        if c.is_string:
            pool = list(c.allowed) if c.allowed else ["A", "B"]
            arr = np.array(rng.choice(pool, size=shape), dtype="U16")
        elif c.allowed is not None:
            arr = np.asarray(rng.choice(list(c.allowed), size=shape)).astype(c.dtype)
        else:
            lo, hi = _limits(c)
            if c.is_integer:
                arr = rng.integers(int(np.ceil(lo)), int(np.floor(hi)) + 1, size=shape).astype(c.dtype)
            else:
                arr = rng.uniform(lo, hi, size=shape).astype(c.dtype)
                if n and draw(st.booleans()):
                    arr.flat[0] = lo
            if c.sorted and arr.ndim == 1:
                arr = np.sort(arr)
        cols[c.name] = arr
    for low, high in PAIRS:
        if low in cols and high in cols:
            a, b = np.minimum(cols[low], cols[high]), np.maximum(cols[low], cols[high])
            if high == "E_MAX":
                b = np.where(b > a, b, a + 1)
            order = np.argsort(a, kind="stable") if a.ndim == 1 else slice(None)
            cols[low], cols[high] = a[order], b[order]
    return cols


def _inject(cols: dict, hspec, fault: str, rng: np.random.Generator) -> dict:
    """One fault of the named kind, where the HDU allows it (else the table stays valid)."""
    cols = dict(cols)
    numeric = [c for c in hspec.columns if not c.is_string and (fault != "not_allowed" or c.allowed)]
    if fault == "missing":
        name = rng.choice([c.name for c in hspec.columns])
        del cols[name]
    elif fault in ("below", "above", "nan", "inf", "float_in_int", "not_allowed") and numeric:
        c = numeric[rng.integers(len(numeric))]
        arr = cols[c.name].astype(float)
        if arr.size == 0:
            return cols
        lo, hi = _limits(c)
        i = rng.integers(arr.size)
        gaps = sorted(set(range(int(min(c.allowed or [0])), int(max(c.allowed or [0])))) - set(c.allowed or []))
        value = {"below": lo - 1, "above": hi + 1, "nan": np.nan, "inf": np.inf, "float_in_int": 0.5,
                 "not_allowed": gaps[0] if gaps else max(c.allowed or [hi]) + 1}[fault]  # fmt: skip
        arr.flat[i] = value
        cols[c.name] = arr if (fault in ("nan", "inf", "float_in_int") or c.is_float) else arr.astype(c.dtype)
    elif fault == "unsorted":
        for c in hspec.columns:
            if c.sorted and cols[c.name].size > 1 and cols[c.name][0] != cols[c.name][-1]:
                cols[c.name] = cols[c.name][::-1].copy()
    elif fault in ("equal_pair", "swapped_pair"):
        for low, high in PAIRS:
            if low in cols and high in cols and cols[low].size:
                if fault == "equal_pair":
                    cols[high] = cols[low].copy()
                else:
                    cols[low], cols[high] = cols[high].copy(), cols[low].copy()
    return cols


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("key", list(HDUS))
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_path_never_accepts_what_pandera_refuses(key, fault, data):
    hspec = HDUS[key]
    cols = _inject(data.draw(valid_tables(hspec, min_rows=2)), hspec, fault,
                   np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))))  # fmt: skip
    table = Table(cols)
    valid = _pandera_valid(table, hspec)
    if _clean(table, hspec):
        assert valid, (key, fault)
    # Whatever the path, check_table's verdict is pandera's.
    assert (check_table(table, hspec, "x.fits") == []) == valid


@pytest.mark.parametrize("key", NUMERIC)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_path_accepts_valid_numeric_tables(key, data):
    table = Table(data.draw(valid_tables(HDUS[key])))
    assert _pandera_valid(table, HDUS[key])
    assert _clean(table, HDUS[key])
