"""Brick ``calibrate``: L1 raw passes + ATT/ANG/SAA -> L2 calibrated, screened events.

The core is :func:`mxt_pipeline.calib.chain.calibrate` (merge and sort the passes,
screen the time, reconstruct the patterns, CTI, gain/offset, multiplicity, RA/Dec).
The I/O shell reads the passes, the attitude and the angles, and requests the weekly
SAA files by week number from the dataset's ``saa/`` folder or from the science
database (``services.sdb_url``, with the run's token and retries).

A pass listed in the manifest but absent is not an error: its time becomes a
TELEMETRY gap and the brick ends DEGRADED (run PARTIAL).  An observation without any
good time or event gives a valid empty L2 file and NO_DATA.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mxt_pipeline.calib.screening import ScreeningParams
from mxt_pipeline.datamodel import week_of
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.pipelines.attitude_source import NO_ATTITUDE_HELP, needs_service_attitude
from mxt_pipeline.pipelines.brick import Brick, CoreResult
from mxt_pipeline.pipelines.bricks.codecs import ANGLES, ATTITUDE, L1_PASSES, L2_EVENTS, OBSERVATION
from mxt_pipeline.pipelines.context import RunContext
from mxt_pipeline.pipelines.parameters import Parameter
from mxt_pipeline.pipelines.ports import MEMORY, FileRecord, Port, file_record, json_codec
from mxt_pipeline.services.saa import SAAArchive

__all__ = ["CALIBRATE", "CALIBRATE_CALDB", "load_calibration_inputs", "calibrate_core"]

#: CALDB code names of the calibration chain.
CALIBRATE_CALDB = ("TELDEF", "CTI", "GAINOFF", "MULTIPLICITY", "PATTERN", "BADPIX")


def load_calibration_inputs(brick: Brick, ctx: RunContext) -> tuple[dict[str, Any], list[FileRecord], list[str]]:
    """I/O shell of ``calibrate``: passes, attitude, angles, and the SAA files by week.

    Standalone (only ``observation`` given), the pass, attitude and angle files are
    taken from the observation.  SAA files come from ``observation.saa_dir`` or, when
    the dataset has none, from the science database at ``ctx.services['sdb_url']``;
    SAA intervals already in the context's values (a simulated observation held in
    memory) are used as they are.
    """
    obs = ctx.values.get("observation")
    if obs is None and ctx.records.get("observation"):
        obs = OBSERVATION.read(ctx.path_of(ctx.records["observation"][0]))
        ctx.values["observation"] = obs
    if obs is not None:
        for port, paths in obs.port_files().items():
            if port not in ctx.values and not ctx.records.get(port):
                ctx.provide_files(port, paths)
    if obs is not None and needs_service_attitude(obs) and "attitude" not in ctx.values \
            and not ctx.records.get("attitude"):
        # A run fetches it in its inputs phase (execute); a brick run alone cannot.
        raise MXTInputError(f"the dataset holds no ATT file: {NO_ATTITUDE_HELP}", keyword="files.att")
    values, records, warnings = Brick.gather_inputs(brick, ctx)
    if obs is not None and obs.missing_l1 and not ctx.input_warnings.get("observation"):
        warnings += [f"L1 file not delivered: {p.name} (its time becomes a TELEMETRY gap)" for p in obs.missing_l1]
    if "saa" in ctx.values:
        # SAA intervals already in memory (a simulated observation of a campaign).
        values["saa"] = ctx.values["saa"]
        return values, records, warnings
    tstart, tstop = _span(obs, values["l1_passes"])
    sdb_url = ctx.services.get("sdb_url")
    if obs is not None and obs.saa_dir is not None:
        archive = SAAArchive(obs.saa_dir)
    elif sdb_url:
        cache = ctx.services.get("cache_dir")
        archive = SAAArchive(url=sdb_url, token=ctx.services.get("token"),
                             max_tries=int(ctx.services.get("max_tries", 5)), cache_dir=cache)  # fmt: skip
    else:
        raise MXTInputError("no SAA source: the dataset has no saa/ folder and no science-database URL was given",
                            keyword="services.sdb_url")  # fmt: skip
    with archive:
        weeks = range(int(week_of(tstart)), int(week_of(tstop)) + 1)
        paths = [archive.path(w) for w in weeks]
        saa = archive.intervals(list(weeks))
    records += [file_record("saa", p, role="input", key=f"w{w}", known=ctx.input_digests)
                for w, p in zip(weeks, paths)]
    values["saa"] = saa
    return values, records, warnings


def _span(obs, passes) -> tuple[float, float]:
    """Observation span: the manifest's, else the union of the passes' coverage."""
    m = obs.manifest if obs is not None else {}
    starts = [p.gti.tstart for p in passes.values() if len(p.gti)]
    stops = [p.gti.tstop for p in passes.values() if len(p.gti)]
    tstart = m.get("tstart") if m.get("tstart") is not None else min(starts, default=0.0)
    tstop = m.get("tstop") if m.get("tstop") is not None else max(stops, default=tstart)
    return float(tstart), float(tstop)


def calibrate_core(inputs: dict[str, Any], params, cal) -> CoreResult:
    """Run the calibration chain on the loaded inputs (pure: no file access)."""
    # lazy: numba and scipy (~280 modules) only when calibrating, not for mxt --help or run --describe
    from mxt_pipeline.calib.chain import ChainParams, calibrate

    obs = inputs.get("observation")
    target = inputs.get("target")
    m = obs.manifest if obs is not None else {}
    chain = ChainParams(
        ra_nom=m.get("ra_nom"),
        dec_nom=m.get("dec_nom"),
        obs_id=(target.obs_id if target is not None else None) or m.get("obs_id"),
        object=(target.object if target is not None else None) or m.get("object"),
        tstart=m.get("tstart"),
        tstop=m.get("tstop"),
        split_threshold_kev=params.split_threshold_kev,
        primary_threshold_kev=params.primary_threshold_kev,
        cti_correction=params.cti_correction,
        multiplicity_correction=params.multiplicity_correction,
        adc_dither=params.adc_dither,
        hot_pixel_search=params.hot_pixel_search,
        hot_pixel_alpha=params.hot_pixel_alpha,
        warm_pixel_search=params.warm_pixel_search,
        screening=replace(
            ScreeningParams(),
            min_earth_elev_deg=params.min_earth_elev_deg,
            max_slew_rate_arcsec_s=params.max_slew_rate_arcsec_s,
            max_attitude_gap_s=params.max_attitude_gap_s,
            max_hits_per_frame=params.max_hits_per_frame,
        ),
    )
    passes = list(inputs["l1_passes"].values())
    events, report = calibrate(passes, inputs["attitude"], inputs.get("angles"), inputs["saa"], cal, chain)
    no_data = len(events) == 0 or events.gti.exposure <= 0
    metrics = {
        "n_passes": len(passes),
        "n_hits_read": report.ingest.n_hits_read,
        "n_events": len(events),
        "ontime_s": events.gti.exposure,
        "lost_s_by_origin": report.screening.get("lost_by_origin", {}),
    }
    return CoreResult({"events": events, "calibration_report": report.to_dict()}, no_data=no_data, metrics=metrics)


CALIBRATE = Brick(
    name="calibrate",
    summary="merge and sort the L1 passes, screen the time (GTI and gap origins), calibrate the events",
    core=calibrate_core,
    inputs=(
        Port("observation", OBSERVATION, "the dataset: manifest (pointing, span, OBS_ID) and its files"),
        Port("target", MEMORY, "the {target} of the run (OBS_ID, OBJECT)", optional=True),
        Port("l1_passes", L1_PASSES, "L1 raw files, one per ground-station pass, any order"),
        Port("attitude", ATTITUDE, "attitude (ATT)"),
        Port("angles", ANGLES, "Earth/Sun/Moon angles (ANG); without it the Earth screening is impossible",
             optional=True),
    ),  # fmt: skip
    outputs=(
        Port("events", L2_EVENTS, "L2 calibrated, screened events with GTI and GAPS (origin of each gap)"),
        Port("calibration_report", json_codec("mxt_calib_report_{obs_id}.json"),
             "what ingestion, screening and reconstruction kept and dropped, and why"),
    ),  # fmt: skip
    params=(
        Parameter("split_threshold_kev", float, None, "split threshold (keV); null: the CALDB PATTERN value",
                  minimum=0.0, nullable=True),
        Parameter("primary_threshold_kev", float, None, "primary threshold (keV); null: the CALDB PATTERN value",
                  minimum=0.0, nullable=True),
        Parameter("cti_correction", bool, True, "correct the charge transfer inefficiency (CTI)"),
        Parameter("multiplicity_correction", bool, True, "correct split-event energies (MULTIPLICITY)"),
        Parameter("adc_dither", bool, True, "dither PHA within the ADC step before calibration"),
        Parameter("hot_pixel_search", bool, True, "flag hot pixels found in the data"),
        Parameter("hot_pixel_alpha", float, 1e-3, "false hot-pixel flags per observation", minimum=1e-9, maximum=1.0),
        Parameter("warm_pixel_search", bool, True,
                  "search the events for warm and flickering pixels and columns, flag them HOTPIX"),
        Parameter("min_earth_elev_deg", float, 10.0, "least boresight elevation above the Earth limb (deg)",
                  minimum=-90.0, maximum=90.0),
        Parameter("max_slew_rate_arcsec_s", float, 30.0, "largest boresight rate of good time (arcsec/s)",
                  minimum=0.0),
        Parameter("max_attitude_gap_s", float, 60.0, "longest attitude sampling gap bridged (s)", minimum=0.0),
        Parameter("max_hits_per_frame", int, 2000, "frames with more hits are BADFRAME gaps", minimum=1),
    ),  # fmt: skip
    caldb=CALIBRATE_CALDB,
    load_inputs=load_calibration_inputs,
)
