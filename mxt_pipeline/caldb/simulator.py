"""The calibration the simulator uses, loaded from a CALDB, with the files it came from.

The simulator (:mod:`mxt_pipeline.simulate`) takes a ``CalibrationSet`` in memory;
this is where it is looked up: the set valid at the observation date, and the CALDB
files of each code name the simulator uses (:data:`~mxt_pipeline.simulate.caldb_models.SIMULATOR_CODES`),
recorded in the dataset's ``truth.json``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mxt_pipeline.caldb.client import CaDBIO
from mxt_pipeline.caldb.products import CalibrationSet
from mxt_pipeline.caldb.select import met_to_datetime
from mxt_pipeline.datapaths import bundled_caldb_dir
from mxt_pipeline.errors import MXTCaldbError
from mxt_pipeline.simulate.caldb_models import SIMULATOR_CODES

__all__ = ["load_simulator_calibration"]


def load_simulator_calibration(caldb: str | os.PathLike[str] | None = None, *, met: float, date: Any = None
                     ) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """The calibration set valid at mission time ``met`` (or ``date``) and what it used.

    Parameters
    ----------
    caldb : path-like, optional
        Local CALDB root; default ``$CALDB``, else the bundled CALDB.
    met : float
        Mission time of the observation start.
    date : str or datetime, optional
        Overrides the date derived from ``met``.

    Returns
    -------
    calset : CalibrationSet
    info : dict
        ``root`` (``"bundled"`` or the path given), ``date`` (ISO string), ``files`` (code name -> path relative to
        the root, with the extension number as ``path[ext]`` when not the first).
    """
    when = date if date is not None else met_to_datetime(met)
    client = CaDBIO(caldb=caldb) if caldb is not None else CaDBIO()
    calset = CalibrationSet.from_caldb(client, when)
    root = getattr(client.backend, "root", None)
    files: dict[str, str] = {}
    for code in SIMULATOR_CODES:
        try:
            entries = client.entries("MXT", code, date=when)
        except MXTCaldbError:  # a code the CALDB lacks is simply not recorded
            continue
        for e in entries[:1]:
            rel = str(e.relpath)
            xno = int(getattr(e.row, "cal_xno", 1))
            files[code] = rel if xno <= 1 else f"{rel}[{xno}]"
    # The bundled CALDB is recorded by name, not by its path on this machine, so that
    # golden truth files do not depend on where the checkout lives.
    if root is not None and Path(root).resolve() == bundled_caldb_dir().resolve():
        root_name = "bundled"
    else:
        root_name = None if root is None else str(root)
    info = {
        "root": root_name,
        "date": when.isoformat() if hasattr(when, "isoformat") else str(when),
        "files": files,
    }
    return calset, info
