"""The CALDB calibration models of MXT: one class per code name, and the calibration set.

Every model reads its CALDB file through :mod:`mxt_pipeline.io` (``from_fits``),
writes it back (``to_fits``, ``to_tables``) and evaluates vectorised:

=============  =====================  ====================================================
code name      class                  main methods (units)
=============  =====================  ====================================================
TELDEF         :class:`Teldef`        ``raw_to_det``, ``det_to_raw``, ``det_to_angles``,
                                      ``angles_to_det`` (pixels, arcmin)
PSF            :class:`PSFModel`      ``density``, ``pixel_fractions``, ``sample``,
                                      ``fwhm_spot`` (DET pixels; E keV, theta arcmin)
EFFAREA        :class:`EffectiveArea` ``__call__(E)`` cm^2, ``energ_lo``/``energ_hi``
VIGNET         :class:`Vignetting`    ``__call__(E, theta)`` in [0, 1]
MATRIX         :class:`ResponseMatrix` ``dense``, ``fold``, ``fwhm``, ``sample_channels``
CTI            :class:`CTIModel`      ``cti(E)``, ``apply(E, RAWZ)``, ``correct`` (keV)
GAINOFF        :class:`GainOffset`    ``to_energy(PHA, RAWY)`` keV, ``to_pha``, ``gain``
                                      eV/ADU, ``offset`` ADU
MULTIPLICITY   :class:`Multiplicity`  ``factor(E, m)``, ``correct(E_sum, m)``
BADPIX         :class:`BadPixels`     ``mask()`` bool [RAWY, RAWZ], ``pixels``
PATTERN        :class:`PatternModel`  ``primary_threshold``/``split_threshold`` keV,
                                      ``read_noise_ev``, ``cloud_sigma_um(E)``
SYSERR         :class:`Systematics`   ``localization_arcsec``, ``combine``
=============  =====================  ====================================================

:class:`CalibrationSet` holds them as attributes named by the lower-case code name;
``CalibrationSet.from_caldb(client, when)`` selects the files valid at ``when``.
:func:`load_calibration` ``(code, path)`` reads one model.  See docs/caldb.md.
"""

from mxt_pipeline.caldb.products._base import CaldbMeta, CalibrationModel
from mxt_pipeline.caldb.products.badpix import BADPIX_TYPES, BadPixels
from mxt_pipeline.caldb.products.calset import (
    CODE_NAMES,
    MODEL_CLASSES,
    CalibrationSet,
    load_calibration,
    model_class,
)
from mxt_pipeline.caldb.products.cti import CTIModel
from mxt_pipeline.caldb.products.effarea import EffectiveArea
from mxt_pipeline.caldb.products.gainoff import GainOffset
from mxt_pipeline.caldb.products.matrix import ResponseMatrix
from mxt_pipeline.caldb.products.multiplicity import Multiplicity
from mxt_pipeline.caldb.products.pattern import PatternModel
from mxt_pipeline.caldb.products.psf import PSFModel
from mxt_pipeline.caldb.products.syserr import Systematics
from mxt_pipeline.caldb.products.teldef import Teldef
from mxt_pipeline.caldb.products.vignet import Vignetting

#: Alternative names of the classes.
PSF = PSFModel
Vignet = Vignetting
Matrix = ResponseMatrix
RMF = ResponseMatrix
CTI = CTIModel
BadPix = BadPixels
Pattern = PatternModel
SysErr = Systematics

__all__ = [
    "CaldbMeta", "CalibrationModel", "CalibrationSet", "load_calibration", "model_class", "MODEL_CLASSES",
    "CODE_NAMES", "Teldef", "PSFModel", "EffectiveArea", "Vignetting", "ResponseMatrix", "CTIModel", "GainOffset",
    "Multiplicity", "BadPixels", "BADPIX_TYPES", "PatternModel", "Systematics",
    "PSF", "Vignet", "Matrix", "RMF", "CTI", "BadPix", "Pattern", "SysErr",
]  # fmt: skip
