"""XBAND-GP: the general-programme pipeline (a target observation, every source).

Bricks, in order (each documented in docs/pipelines.md):

0. ``preprocess`` (telemetry inputs only): CCSDS packets of the passes -> L1 passes,
   attitude and the defect report;
1. ``calibrate``: L1 passes + ATT/ANG/SAA -> L2 events (GTI, gaps with origins);
2. ``detect``: L2 events -> source list MXT-SOP-SKY and DS9 regions;
3. ``lightcurves``: one gap-aware light curve (MXT_LC) and preview per source
   (non-critical: a failure leaves the run PARTIAL with the source list published);
4. ``image_preview``: field image with the sources (non-critical).
"""

from __future__ import annotations

from mxt_pipeline.pipelines.bricks.calibrate import CALIBRATE
from mxt_pipeline.pipelines.bricks.detect import DETECT
from mxt_pipeline.pipelines.bricks.images import IMAGE_PREVIEW
from mxt_pipeline.pipelines.bricks.lightcurves import LIGHTCURVES
from mxt_pipeline.pipelines.bricks.preprocess import PREPROCESS
from mxt_pipeline.pipelines.pipeline import Pipeline

__all__ = ["EXTERNAL_INPUTS", "TELEMETRY_EXTERNAL_INPUTS", "build_pipeline"]

#: Inputs of the X-band pipelines given from outside (the dataset and the target).
EXTERNAL_INPUTS = ("observation", "target", "l1_passes", "attitude", "angles")
#: The same for a run on telemetry: the packet files instead of the L1 passes and the
#: attitude, which the ``preprocess`` brick makes.
TELEMETRY_EXTERNAL_INPUTS = ("observation", "target", "telemetry", "angles")


def build_pipeline(telemetry: bool = False) -> Pipeline:
    """The XBAND-GP pipeline.

    Parameters
    ----------
    telemetry : bool
        Inputs are telemetry packets: the pipeline starts with ``preprocess``, whose
        L1 passes and attitude feed ``calibrate``.
    """
    bricks = [CALIBRATE, DETECT, LIGHTCURVES, IMAGE_PREVIEW]
    return Pipeline(
        "xband-gp",
        [PREPROCESS, *bricks] if telemetry else bricks,
        external=TELEMETRY_EXTERNAL_INPUTS if telemetry else EXTERNAL_INPUTS,
        summary=("general programme: " + ("decode the telemetry, " if telemetry else "")
                 + "calibrate, detect every source, light curves, previews"),
    )
