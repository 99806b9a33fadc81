"""XBAND-CP: the core-programme pipeline (GRB follow-up), fast products first.

The burst position comes from the trigger in the ``{target}`` (runtime data), or from
``--burst-ra/--burst-dec`` on the command line.  Bricks, in order:

0. ``preprocess`` (telemetry inputs only): CCSDS packets of the passes -> L1 passes,
   attitude and the defect report;
1. ``calibrate``: L1 passes + ATT/ANG/SAA -> L2 events;
2. ``detect``: L2 events -> source list MXT-SOP-SKY;
3. ``burst``: the source matching the trigger -> ``mxt_burst_<OBS_ID>.json``, a fast
   product published in ``OUT/fast/`` at once, before the light curves;
4. ``lightcurves``: light curves and previews, the burst's first, against the time
   since the trigger (non-critical);
5. ``image_preview``: field image with the sources and the trigger (non-critical).
"""

from __future__ import annotations

from mxt_pipeline.pipelines.bricks.burst import BURST
from mxt_pipeline.pipelines.bricks.calibrate import CALIBRATE
from mxt_pipeline.pipelines.bricks.detect import DETECT
from mxt_pipeline.pipelines.bricks.images import IMAGE_PREVIEW
from mxt_pipeline.pipelines.bricks.lightcurves import LIGHTCURVES
from mxt_pipeline.pipelines.bricks.preprocess import PREPROCESS
from mxt_pipeline.pipelines.pipeline import Pipeline
from mxt_pipeline.pipelines.xband_gp import EXTERNAL_INPUTS, TELEMETRY_EXTERNAL_INPUTS

__all__ = ["build_pipeline"]


def build_pipeline(telemetry: bool = False) -> Pipeline:
    """The XBAND-CP pipeline.

    Parameters
    ----------
    telemetry : bool
        Inputs are telemetry packets: the pipeline starts with ``preprocess``, whose
        L1 passes and attitude feed ``calibrate``.
    """
    bricks = [CALIBRATE, DETECT, BURST, LIGHTCURVES, IMAGE_PREVIEW]
    return Pipeline(
        "xband-cp",
        [PREPROCESS, *bricks] if telemetry else bricks,
        external=TELEMETRY_EXTERNAL_INPUTS if telemetry else EXTERNAL_INPUTS,
        summary=("core programme (GRB): " + ("decode the telemetry, " if telemetry else "")
                 + "calibrate, detect, burst position first, light curves, previews"),
    )
