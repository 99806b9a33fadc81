"""Brick ``detect``: L2 events -> the MXT-SOP-SKY source list and its DS9 region file.

The core is :func:`mxt_pipeline.detect.pipeline.detect_sources`: band images in
detector coordinates, stage 1 (PSF-projection histogram fit), stage 2 (multi-band
multi-source Cash maximum likelihood), errors from delta-C with the CALDB systematic
added in quadrature, RA/Dec through the attitude.  An event list without good time
gives a valid source list with zero rows and NO_DATA; a field without sources is a
normal result (SUCCESS with zero rows).

Validated configuration.  The parameters' defaults are those of
:class:`~mxt_pipeline.detect.pipeline.DetectionParameters` (written once, there); the
DET_ML threshold and the dC error levels come from the CALDB SYSERR file (its DCLEVELS
table and the threshold it was calibrated at), through
:meth:`~mxt_pipeline.detect.pipeline.DetectionParameters.for_calibration`.  The brick
reports the values in force as its *effective* configuration, which the regression
harness compares with the golden one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from mxt_pipeline.detect.bandpsf import DetectionCalibration
from mxt_pipeline.detect.bands import DEFAULT_BANDS, as_bands, format_bands
from mxt_pipeline.detect.pipeline import BACKGROUND_MODELS, DetectionParameters, detect_sources
from mxt_pipeline.detect.srclist import empty_source_table
from mxt_pipeline.pipelines.brick import Brick, CoreResult
from mxt_pipeline.pipelines.bricks.codecs import ATTITUDE, L2_EVENTS, REGIONS, SRCLIST, SourceList
from mxt_pipeline.pipelines.parameters import Parameter
from mxt_pipeline.pipelines.ports import Port

__all__ = ["DETECT", "DETECT_CALDB", "detect_core", "detection_parameters"]

#: CALDB code names of the detection.
DETECT_CALDB = ("PSF", "TELDEF", "BADPIX", "EFFAREA", "VIGNET", "SYSERR")

_DEFAULTS = DetectionParameters()


def detection_parameters(params, dcal: DetectionCalibration) -> DetectionParameters:
    """The detector configuration of a run: the brick's parameters over the CALDB's.

    Parameters
    ----------
    params : ParameterSet
        The brick's validated parameters.
    dcal : DetectionCalibration
        The calibration of the run (its DCLEVELS levels and their threshold).
    """
    return DetectionParameters(
        det_ml_threshold=params.det_ml_threshold,
        max_sources=params.max_sources,
        stage1_max_sources=params.stage1_max_sources,
        n_rays=params.n_rays,
        photon_index=params.photon_index,
        subsample=params.subsample,
        pair_test=replace(_DEFAULTS.pair_test, enabled=bool(params.pair_test)),
        background_model=params.background_model,
    ).for_calibration(dcal)


def detect_core(inputs: dict[str, Any], params, cal) -> CoreResult:
    """Detect the sources of the events (pure)."""
    events = inputs["events"]
    attitude = inputs.get("attitude") if params.use_attitude else None
    bands = list(as_bands(params.bands))
    dcal = DetectionCalibration.from_calset(cal)
    dp = detection_parameters(params, dcal)
    no_data = len(events) == 0 or events.gti.exposure <= 0
    table = empty_source_table(len(bands)) if no_data else detect_sources(events, dcal, bands, dp, attitude=attitude)
    gti = events.gti
    src = SourceList(
        table=table,
        bands=bands,
        obs_id=str(events.meta.get("OBS_ID", "")),
        syserr_arcsec=float(dcal.syserr_arcsec),
        ml_threshold=dp.threshold,
        tstart=gti.tstart if len(gti) else None,
        tstop=gti.tstop if len(gti) else None,
        object=events.meta.get("OBJECT"),
    )
    metrics = {
        "n_sources": len(table),
        "max_det_ml": float(np.max(table["DET_ML"])) if len(table) else None,
        "best_r90_arcsec": float(np.min(table["ERR_R90"])) if len(table) else None,
    }
    effective = {"det_ml_threshold": dp.threshold, "error_levels": dp.error_levels.origin,
                 "syserr_arcsec": float(dcal.syserr_arcsec)}  # fmt: skip
    return CoreResult({"srclist": src, "regions": src}, no_data=no_data, metrics=metrics, effective=effective)


DETECT = Brick(
    name="detect",
    summary="two-stage source detection (PSF-projection fit, multi-band Cash ML), errors, RA/Dec",
    core=detect_core,
    inputs=(
        Port("events", L2_EVENTS, "L2 events with GTI"),
        Port("attitude", ATTITUDE, "attitude: positions through the reference attitude", optional=True),
    ),
    outputs=(
        Port("srclist", SRCLIST, "source list MXT-SOP-SKY (zero rows for an empty field)"),
        Port("regions", REGIONS, "DS9 regions: circles of radius ERR_R90"),
    ),
    params=(
        Parameter("bands", str, format_bands(DEFAULT_BANDS), "energy bands of the ML fit, keV (non-overlapping)"),
        Parameter("det_ml_threshold", float, _DEFAULTS.det_ml_threshold,
                  "least DET_ML of a listed source; null: the validated one (CALDB SYSERR DCLEVELS MLTHRESH)",
                  minimum=0.0, nullable=True),
        Parameter("max_sources", int, _DEFAULTS.max_sources, "most sources fitted together", minimum=1, maximum=100),
        Parameter("stage1_max_sources", int, _DEFAULTS.stage1_max_sources, "most sources found by stage 1",
                  minimum=1, maximum=100),
        Parameter("n_rays", int, _DEFAULTS.n_rays, "rays of the delta-C contour search", minimum=4, maximum=64),
        Parameter("photon_index", float, _DEFAULTS.photon_index, "power-law index weighting energies in a band",
                  minimum=0.0, maximum=5.0),
        Parameter("subsample", int, _DEFAULTS.subsample, "sub-samples per pixel and axis of the exposure map",
                  minimum=1, maximum=16),
        Parameter("pair_test", bool, _DEFAULTS.pair_test.enabled,
                  "test each bright source for a confused companion (likelihood ratio, threshold calibrated by simulation)"),
        Parameter("background_model", str, _DEFAULTS.background_model,
                  "background per band: vignetted sky + flat particle components, or one flat component",
                  choices=BACKGROUND_MODELS),
        Parameter("use_attitude", bool, True, "convert positions through the attitude (else the events' DET-sky map)"),
    ),
    caldb=DETECT_CALDB,
)
