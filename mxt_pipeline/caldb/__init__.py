"""The calibration database: HEASARC CALDB index, selection, client and service.

* :class:`CaDBIO` -- the client every task uses (seed API):
  ``CaDBIO(use_tokens=True, max_tries=5).search("MXT", "teldef", download_path=...)``.
* :func:`read_cif` / :func:`write_cif` -- the calibration index file (``caldb.indx``).
* :func:`build_index` -- index a CALDB tree from the files' CALDB keywords.
* :func:`quzcif` / :func:`select` -- HEASoft ``quzcif`` selection rules.
* :mod:`mxt_pipeline.caldb.service` -- the CALDB web service (imported lazily: this
  package does not import Starlette or uvicorn).

See docs/caldb.md.
"""

from mxt_pipeline.caldb.cif import CifRow, read_cif, write_cif
from mxt_pipeline.caldb.client import CaDBIO
from mxt_pipeline.caldb.config import CaldbConfigEntry, read_config, write_config
from mxt_pipeline.caldb.expressions import parse_boundary, parse_expression
from mxt_pipeline.caldb.index import build_index, scan_calibration_files, write_index
from mxt_pipeline.caldb.select import CaldbQuery, met_to_datetime, quzcif, select

__all__ = [
    "CaDBIO",
    "CifRow",
    "read_cif",
    "write_cif",
    "build_index",
    "scan_calibration_files",
    "write_index",
    "CaldbQuery",
    "quzcif",
    "select",
    "met_to_datetime",
    "parse_boundary",
    "parse_expression",
    "CaldbConfigEntry",
    "read_config",
    "write_config",
]
