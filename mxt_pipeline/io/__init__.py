"""FITS I/O layer, product formats, schemas and validation.

Nothing else in the package opens FITS files: read and write products with
:func:`read_product` / :func:`write_product`, check them with :func:`validate_file`.

Product types (``CONTENT`` keyword): ``MXT_L1_RAW``, ``MXT_ATT``, ``MXT_SAA``,
``MXT_ANG``, ``MXT_L2_EVT``, ``MXT_SOP_SKY``, ``MXT_LC``, ``CALDB_CIF`` (see
:mod:`mxt_pipeline.io.formats` and ``docs/formats.md``).
"""

from mxt_pipeline.io.fits import (
    FitsHDU,
    FitsProduct,
    atomic_path,
    atomic_write_bytes,
    met_to_isot,
    read_header,
    read_product,
    write_product,
)
from mxt_pipeline.io.formats import REGISTRY, get_spec, register
from mxt_pipeline.io.schemas import Violation
from mxt_pipeline.io.spec import ColumnSpec, HDUSpec, KeywordSpec, ProductSpec
from mxt_pipeline.io.validate import validate_file

__all__ = [
    "FitsHDU",
    "FitsProduct",
    "atomic_path",
    "atomic_write_bytes",
    "met_to_isot",
    "read_header",
    "read_product",
    "write_product",
    "REGISTRY",
    "get_spec",
    "register",
    "Violation",
    "ColumnSpec",
    "HDUSpec",
    "KeywordSpec",
    "ProductSpec",
    "validate_file",
]
