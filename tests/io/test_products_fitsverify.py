"""Every product type written from a small example passes fitsverify and mxt validate."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from mxt_pipeline.io import REGISTRY, validate_file, write_product
from mxt_pipeline.io.spec import ProductSpec


def example_value(cspec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Legal values for one column, from its spec."""
    if cspec.allowed is not None:
        return np.array([cspec.allowed[i % len(cspec.allowed)] for i in range(n)])
    if cspec.is_string:
        return np.full((n,) if cspec.repeat == 1 else (n, cspec.repeat), "NONE")
    lo = 0 if cspec.tlmin is None else cspec.tlmin
    hi = lo + 100 if cspec.tlmax is None else min(cspec.tlmax, lo + 100)
    shape = (n,) if cspec.repeat == 1 else (n, cspec.repeat)
    vals = rng.uniform(lo, hi, shape)
    if cspec.sorted:
        vals = np.sort(vals, axis=0)
    return np.round(vals).astype(cspec.dtype) if cspec.is_integer else vals.astype(cspec.dtype)


def example_product(spec: ProductSpec, rng: np.random.Generator, n: int = 7):
    tables, hdu_headers, header = {}, {}, {}
    for kw in spec.primary_keywords:
        header[kw.name] = kw.type(1) if kw.type is not str else "EXAMPLE"
    for h in spec.hdus:
        cols = {c.name: example_value(c, n, rng) for c in h.columns}
        if {"START", "STOP"} <= set(cols):
            cols["STOP"] = cols["START"] + 1.0
        if {"E_MIN", "E_MAX"} <= set(cols):
            cols["E_MAX"] = cols["E_MIN"] + 1.0
        if {"ERR_R68", "ERR_R90"} <= set(cols):
            cols["ERR_R90"] = cols["ERR_R68"] * 1.6
        tables[h.extname] = Table(cols)
        hdu_headers[h.extname] = {
            k.name: (k.allowed[0] if k.allowed else (k.type(1) if k.type is not str else "EXAMPLE"))
            for k in h.keywords
            if k.value is None
        }
    return tables, hdu_headers, header


@pytest.mark.parametrize("content", sorted(REGISTRY))
def test_every_product_type_passes_fitsverify_and_validate(tmp_path, fitsverify, content):
    spec = REGISTRY[content]
    tables, hdu_headers, header = example_product(spec, np.random.default_rng(1))
    cif = content == "CALDB_CIF"
    path = write_product(
        tmp_path / f"{content}.fits",
        content,
        tables,
        header=header,
        hdu_headers=hdu_headers,
        tstart=None if cif else 0.0,
        tstop=None if cif else 100.0,
    )
    result = fitsverify(path)
    assert result.errors == 0, result.output
    assert validate_file(path) == []
