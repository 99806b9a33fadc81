"""Access to the CALDB models the simulator needs (through ``CalibrationSet``).

The simulator reads the same calibration as the pipeline: ``PSF``, ``EFFAREA``,
``VIGNET``, ``TELDEF`` for the optics and ``PATTERN``, ``CTI``, ``GAINOFF``, ``BADPIX``
for the camera (CALDB contract).  This module maps the models' documented attributes
to the detector parameters and records which CALDB files were used (paths relative to
the CALDB root, for ``truth.json``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.errors import MXTCaldbError

__all__ = ["SIMULATOR_CODES", "detector_parameters", "load_calibration"]

#: CALDB code names the simulator uses.
SIMULATOR_CODES = ("TELDEF", "PSF", "EFFAREA", "VIGNET", "PATTERN", "CTI", "GAINOFF", "BADPIX")


def detector_parameters(calset) -> dict[str, Any]:
    """Detector parameters from the ``pattern``, ``cti``, ``gainoff`` and ``badpix`` models.

    Returns
    -------
    dict
        ``sigma_um`` (callable, charge-cloud width in microns vs energy in keV),
        ``read_noise_kev``, ``primary_threshold_kev``, ``split_threshold_kev``,
        ``cti_apply`` and ``to_pha`` (callables), ``gain_ev_adu`` and ``offset_adu``
        (per RAWY), ``bad_mask`` (bool [RAWY, RAWZ]).
    """
    pat = calset.pattern
    badpix = getattr(calset, "badpix", None)
    bad = badpix.mask() if badpix is not None else np.zeros((C.N_PIX, C.N_PIX), dtype=bool)
    return {
        "sigma_um": pat.cloud_sigma_um,
        "read_noise_kev": float(pat.read_noise_ev) / 1000.0,
        "primary_threshold_kev": float(pat.primary_threshold),
        "split_threshold_kev": float(pat.split_threshold),
        "cti_apply": calset.cti.apply,
        "to_pha": calset.gainoff.to_pha,
        "gain_ev_adu": np.asarray(calset.gainoff.gain, dtype=float),
        "offset_adu": np.asarray(calset.gainoff.offset, dtype=float),
        "bad_mask": np.asarray(bad, dtype=bool),
    }


def load_calibration(caldb: str | os.PathLike[str] | None = None, *, met: float, date: Any = None
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
    from mxt_pipeline.caldb import CaDBIO, met_to_datetime
    from mxt_pipeline.caldb.products import CalibrationSet
    from mxt_pipeline.datapaths import bundled_caldb_dir

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
