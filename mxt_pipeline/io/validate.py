"""Validation of products on disk: ``mxt validate``.

:func:`validate_file` collects every violation of a file (structure, headers, column
values) instead of stopping at the first; :func:`raise_for_violations` is what the
readers call to refuse a bad product with one :class:`~mxt_pipeline.errors.MXTSchemaError`
that lists them all.
"""

from __future__ import annotations

import os
from pathlib import Path

from mxt_pipeline.errors import MXTFormatError, MXTSchemaError
from mxt_pipeline.io.schemas import Violation, check_header, check_table
from mxt_pipeline.io.spec import ProductSpec

__all__ = ["validate_file", "product_violations", "raise_for_violations"]


def product_violations(product, spec: ProductSpec) -> list[Violation]:
    """Return every header and value violation of a product already read."""
    file = str(product.path)
    out = check_header(product.primary_header, None, spec, file, 0)
    for hspec in spec.hdus:
        hdu = product.hdus.get(hspec.extname)
        if hdu is None:
            continue
        out += check_header(hdu.header, hspec, spec, file, hspec.extname)
        if hdu.table is not None:
            out += check_table(hdu.table, hspec, file)
    return out


def raise_for_violations(product, spec: ProductSpec) -> None:
    """Raise MXTSchemaError listing every violation of ``product`` (if any)."""
    violations = product_violations(product, spec)
    if violations:
        raise MXTSchemaError(
            f"{len(violations)} schema violation(s) in {spec.content}",
            violations,
            file=product.path,
        )


def validate_file(path: str | os.PathLike[str]) -> list[Violation]:
    """Validate one file of any registered product type.

    Returns
    -------
    list of Violation
        Empty when the file is valid. Structural failures (unreadable file, missing HDU
        or column, wrong type) are reported as one violation each.
    """
    from mxt_pipeline.io.fits import read_product
    from mxt_pipeline.io.formats import get_spec

    path = Path(path)
    try:
        product = read_product(path, validate=False)
    except MXTFormatError as exc:
        return [Violation(str(path), exc.hdu, exc.message, column=exc.column, keyword=exc.keyword)]
    return product_violations(product, get_spec(product.content))
