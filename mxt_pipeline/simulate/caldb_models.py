"""Access to the CALDB models the simulator needs (through ``CalibrationSet``).

The simulator reads the same calibration as the pipeline: ``PSF``, ``EFFAREA``,
``VIGNET``, ``TELDEF`` for the optics and ``PATTERN``, ``CTI``, ``GAINOFF``, ``BADPIX``
for the camera (CALDB contract).  This module maps the models' documented attributes
to the detector parameters.  Loading the models from a CALDB (and recording which files
were used, for ``truth.json``) is the CALDB layer's:
:func:`mxt_pipeline.caldb.simulator.load_simulator_calibration`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mxt_pipeline import constants as C

__all__ = ["SIMULATOR_CODES", "detector_parameters"]

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
