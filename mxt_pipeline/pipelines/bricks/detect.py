"""Brick ``detect``: L2 events -> the MXT-SOP-SKY source list and its DS9 region file.

The core is :func:`mxt_pipeline.detect.pipeline.detect_sources`: band images in
detector coordinates, stage 1 (PSF-projection histogram fit), stage 2 (multi-band
multi-source Cash maximum likelihood), errors from delta-C with the CALDB systematic
added in quadrature, RA/Dec through the attitude.  An event list without good time
gives a valid source list with zero rows and NO_DATA; a field without sources is a
normal result (SUCCESS with zero rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mxt_pipeline.pipelines.brick import Brick, CoreResult
from mxt_pipeline.pipelines.bricks.codecs import ATTITUDE, L2_EVENTS, REGIONS, SRCLIST, SourceList
from mxt_pipeline.pipelines.parameters import Parameter
from mxt_pipeline.pipelines.ports import Port

__all__ = ["DETECT", "DETECT_CALDB", "detect_core", "detection_calibration"]

#: CALDB code names of the detection.
DETECT_CALDB = ("PSF", "TELDEF", "BADPIX", "EFFAREA", "VIGNET", "SYSERR")


def detection_calibration(cal):
    """The detection's calibration from a brick's bundle, by the CALDB contract's names.

    PSF and TELDEF as they are, the bad-pixel mask ``BADPIX.mask()`` ([RAWY, RAWZ]),
    ``EFFAREA(E)`` in cm^2, ``VIGNET(E, theta)``, and the 90% localisation systematic
    ``SYSERR.localization_arcsec`` (25" for MXT alerts, GCN 41243).
    """
    from mxt_pipeline.detect.bandpsf import DetectionCalibration
    from mxt_pipeline.errors import MXTCalibrationError

    syserr = getattr(cal.syserr, "localization_arcsec", None)
    if syserr is None:
        raise MXTCalibrationError("the SYSERR model gives no localization_arcsec", hdu="SYSERR")
    bad = None if cal.badpix is None else np.asarray(cal.badpix.mask(), dtype=bool)
    return DetectionCalibration(
        psf=cal.psf,
        teldef=cal.teldef,
        bad_mask=bad,
        effective_area=cal.effarea,
        vignetting=cal.vignet,
        syserr_arcsec=float(syserr),
    )


def detect_core(inputs: dict[str, Any], params, cal) -> CoreResult:
    """Detect the sources of the events (pure)."""
    from mxt_pipeline.detect.bands import as_bands
    from mxt_pipeline.detect.pipeline import DetectionParameters, detect_sources
    from mxt_pipeline.detect.srclist import empty_source_table

    events = inputs["events"]
    attitude = inputs.get("attitude") if params.use_attitude else None
    bands = list(as_bands(params.bands))
    dcal = detection_calibration(cal)
    dp = DetectionParameters(
        det_ml_threshold=params.det_ml_threshold,
        max_sources=params.max_sources,
        stage1_max_sources=params.stage1_max_sources,
        n_rays=params.n_rays,
        photon_index=params.photon_index,
        subsample=params.subsample,
    )
    no_data = len(events) == 0 or events.gti.exposure <= 0
    table = empty_source_table(len(bands)) if no_data else detect_sources(events, dcal, bands, dp, attitude=attitude)
    gti = events.gti
    src = SourceList(
        table=table,
        bands=bands,
        obs_id=str(events.meta.get("OBS_ID", "")),
        syserr_arcsec=float(dcal.syserr_arcsec),
        ml_threshold=float(dp.det_ml_threshold),
        tstart=gti.tstart if len(gti) else None,
        tstop=gti.tstop if len(gti) else None,
        object=events.meta.get("OBJECT"),
    )
    metrics = {
        "n_sources": len(table),
        "max_det_ml": float(np.max(table["DET_ML"])) if len(table) else None,
        "best_r90_arcsec": float(np.min(table["ERR_R90"])) if len(table) else None,
    }
    return CoreResult({"srclist": src, "regions": src}, no_data=no_data, metrics=metrics)


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
        Parameter("bands", str, "0.2-2,2-10", "energy bands of the ML fit, keV (non-overlapping)"),
        Parameter("det_ml_threshold", float, 9.0, "least DET_ML of a listed source", minimum=0.0),
        Parameter("max_sources", int, 10, "most sources fitted together", minimum=1, maximum=100),
        Parameter("stage1_max_sources", int, 8, "most sources found by stage 1", minimum=1, maximum=100),
        Parameter("n_rays", int, 8, "rays of the delta-C contour search", minimum=4, maximum=64),
        Parameter("photon_index", float, 2.0, "power-law index weighting energies in a band", minimum=0.0, maximum=5.0),
        Parameter("subsample", int, 4, "sub-samples per pixel and axis of the exposure map", minimum=1, maximum=16),
        Parameter("use_attitude", bool, True, "convert positions through the attitude (else the events' DET-sky map)"),
    ),
    caldb=DETECT_CALDB,
)
