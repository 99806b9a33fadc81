"""The synthetic MXT calibration set: documented physics (:mod:`.model`) written as a
HEASARC-layout CALDB (:mod:`.generate`); ``python -m mxt_pipeline.caldb.synthetic``."""

from mxt_pipeline.caldb.synthetic.generate import BUILD_EPOCH, MXT_FILES, generate
from mxt_pipeline.caldb.synthetic.model import synthetic_models

__all__ = ["BUILD_EPOCH", "MXT_FILES", "generate", "synthetic_models"]
