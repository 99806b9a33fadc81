"""One campaign run: simulate, then run the pipeline's bricks, then compare with the truth.

:func:`simulate_and_process` is the default run function of the campaign runner
(:class:`mxt_pipeline.campaign.runner.CampaignSpec`).  The observation is simulated in
memory (``simulate.bench.simulate``) and processed by the registered pipeline
(XBAND-GP by default) through :meth:`Pipeline.run <mxt_pipeline.pipelines.Pipeline.run>`:
the same bricks, declared defaults, CALDB selection and product writers as ``mxt run``
(the equivalence is tested byte for byte).  The run's seed, from the campaign seed and
the run index, is both the seed of the case preset and of the bench, so a run is
reproduced by ``mxt simulate CASE --seed SEED``.  The run folder receives
``truth.json``, ``compare.json`` and the bricks' products under ``products/`` (source
list, light curves, previews; the L2 events only with ``keep_events``); ``mxt compare``
reads them back.

Campaign options (``CampaignSpec.options``, ``mxt campaign run --option KEY=VALUE``):

``caldb``
    CALDB root (default ``$CALDB``, else the bundled CALDB).
``scenario``
    The ``scenario`` case: the parsed scenario file of ``mxt campaign run --scenario``
    (with ``scenario_file``, its name, and ``scenario_sha256``, its digest).
``case_options``
    Keyword arguments of the case preset (:func:`mxt_pipeline.simulate.cases.make_case`),
    e.g. ``{"duration": 2000}`` or ``{"template": null}`` for the analytic GRB.
``calibration_lines``
    Calibration-source lines added to every scenario, ``[{"energy": keV, "rate": c/s}]``
    (default none: no line residuals).
``pipeline``
    The pipeline that processes each observation (``xband-gp`` by default).
``parameters``
    Brick parameter overrides, ``{"detect": {"det_ml_threshold": 12}, "lightcurves":
    {"binning": "fixed"}}``: the names, defaults and checks of ``mxt run -p``.
``write_products`` (default true), ``keep_events`` (default false)
    Keep the bricks' products in the run folder; keep the L2 event list too.
Tolerances of the comparison (:class:`mxt_pipeline.campaign.truth_match.Tolerances`).

True counts.  The counts a perfect detection would attribute to a source are its
photons detected by the camera during the good time of the calibrated list with a true
energy in the detection bands (the bench knows which photon belongs to which source),
divided by the fraction of its focal-plane photons that land on the chip (the COUNTS
of the detection are counts of the whole PSF, whose arms and halo reach beyond the
chip): the counts ratio measures the detection's bias, not the screening's losses.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.caldb.select import met_to_datetime
from mxt_pipeline.caldb.simulator import load_simulator_calibration as load_calibration
from mxt_pipeline.campaign.truth_match import Tolerances, chip_fraction, compare_run
from mxt_pipeline.detect.bandpsf import DetectionCalibration
from mxt_pipeline.detect.bands import as_bands
from mxt_pipeline.detect.crlb import position_bound
from mxt_pipeline.detect.images import select_events
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io.truth import write_truth
from mxt_pipeline.pipelines.bricks.detect import DETECT_CALDB
from mxt_pipeline.pipelines.caldb_bundle import provider_from
from mxt_pipeline.pipelines.context import RunContext
from mxt_pipeline.pipelines.ports import write_json
from mxt_pipeline.pipelines.registry import get_pipeline
from mxt_pipeline.pipelines.runtime import ObservationInMemory, Target
from mxt_pipeline.simulate.background import CalibrationSettings
from mxt_pipeline.simulate.bench import scenario_manifest, simulate
from mxt_pipeline.simulate.cases import make_case

__all__ = [
    "simulate_and_process",
    "process_simulation",
    "chain_context",
    "PRODUCTS_DIR",
    "true_counts_in_gti",
    "background_per_pixel",
    "line_event_energies",
    "crlb_versus_counts",
    "COMPARE_FILE",
]

log = logging.getLogger(__name__)

#: Per-run comparison record written in the run folder.
COMPARE_FILE = "compare.json"
#: Folder of the bricks' products in a run folder.
PRODUCTS_DIR = "products"
#: Options of earlier versions, now brick parameters (``parameters`` option).
_RETIRED_OPTIONS = {"bands": "detect.bands", "det_ml_threshold": "detect.det_ml_threshold",
                    "max_sources": "detect.max_sources", "lc_binning": "lightcurves.binning",
                    "lc_target_snr": "lightcurves.target_snr", "lc_bin_width": "lightcurves.bin_width_s"}  # fmt: skip
#: Default counts of the Cramer-Rao curve (log-spaced; interpolated in log-log).
CRLB_COUNTS = np.geomspace(10.0, 1.0e5, 13)


@functools.lru_cache(maxsize=8)
def _calibration(caldb: str | None, day: int) -> tuple[Any, dict[str, Any]]:
    """The calibration set valid on mission day ``day`` (cached per worker process)."""
    return load_calibration(caldb, met=day * 86400.0)


def _scenario(task) -> Any:
    opts = task.options
    kwargs = dict(opts.get("case_options") or {})
    if task.case == "scenario" and "scenario" in opts:
        # A user's scenario file (mxt campaign run --scenario), parsed into campaign.json.
        kwargs.setdefault("scenario", opts["scenario"])
    scenario = make_case(task.case, int(task.seed), **kwargs)
    lines = opts.get("calibration_lines")
    if lines:
        scenario = replace(scenario, calibration=CalibrationSettings(lines=tuple(lines)))
    return scenario


def true_counts_in_gti(ds, gti, e_min: float, e_max: float) -> np.ndarray:
    """True counts of each simulated source, as the detection's COUNTS define them.

    The source's photons detected by the camera inside the GTI with a true energy in
    ``[e_min, e_max)``, divided by the fraction of its focal-plane photons that land on
    the chip (:func:`chip_fraction`): the counts of the whole PSF.

    Parameters
    ----------
    ds : SimulatedDataset
    gti : GTI
        Good time of the calibrated event list.
    """
    n_src = len(ds.scenario.sources)
    ph = ds.photons
    det = np.zeros(np.size(ph.time), bool)
    det[ds.detected] = True
    keep = det & (ph.energy >= e_min) & (ph.energy < e_max) & (ph.component < n_src)
    if len(gti):
        keep &= gti.contains(ph.time)
    counts = np.bincount(ph.component[keep], minlength=n_src)[:n_src].astype(float)
    return counts / np.array([chip_fraction(s) for s in ds.truth["sources"]], float).reshape(n_src)


def background_per_pixel(events, table, bands, bad_mask=None) -> list[float]:
    """Background counts per detector pixel in each band.

    The imaging events of the band less the counts the detection gives its sources,
    over the pixels that are not dead.
    """
    n_pix = C.N_PIX * C.N_PIX - (0 if bad_mask is None else int(np.count_nonzero(bad_mask)))
    counts = np.asarray(table["COUNTS"], float).reshape(len(table), len(bands)) if len(table) else np.zeros((0, len(bands)))
    out = []
    for b, band in enumerate(bands):
        n = int(np.count_nonzero(select_events(events, band)))
        out.append(max(n - float(counts[:, b].sum()), 0.0) / max(n_pix, 1))
    return out


def line_event_energies(events) -> np.ndarray:
    """Energies (keV) of the events used for the calibration lines.

    The imaging events (valid patterns 0-12, no rejecting STATUS bit, inside the GTI):
    their energies are multiplicity-corrected, and single-pixel events alone are too
    few with 75 um pixels (a few per cent at 5.9 keV).
    """
    return np.asarray(events["ENERGY"], float)[select_events(events)]


@functools.lru_cache(maxsize=4)
def _provider(caldb: str | None):
    """The CALDB provider of a worker process (models loaded once, then cached)."""
    return provider_from(caldb)


def chain_context(values: Mapping[str, Any], manifest: Mapping[str, Any], provider, parameters: Mapping[str, Any],
                  out_dir: Path, *, mode: str = "XBAND-GP") -> RunContext:  # fmt: skip
    """The run context of one observation held in memory, as ``mxt run`` builds it.

    Parameters
    ----------
    values : mapping
        The external inputs in memory: ``l1_passes`` (by name), ``attitude``,
        ``angles`` and ``saa`` (the SAA intervals of the observation's weeks).
    manifest : mapping
        The keys of ``dataset.json`` (``obs_id``, ``object``, ``ra_nom``, ``dec_nom``,
        ``tstart``, ``tstop``, ``trigger_time``).
    provider : CalibrationProvider
    parameters : mapping
        Parameter overrides by brick name (as ``mxt run -p``).
    out_dir : Path
        Where the bricks write their products.
    """
    target = Target(obs_id=str(manifest["obs_id"]), mode=mode, object=manifest.get("object"),
                    trigger_time=None if manifest.get("trigger_time") is None else float(manifest["trigger_time"]))  # fmt: skip
    tstart = manifest.get("tstart")
    ctx = RunContext(
        out_dir=Path(out_dir),
        naming={"obs_id": target.obs_id},
        parameters={k: dict(v) for k, v in parameters.items()},
        calibration=provider,
        obs_date=None if tstart is None else met_to_datetime(float(tstart)),
        target=target,
    )
    ctx.values.update(values)
    ctx.values["target"] = target
    ctx.values["observation"] = ObservationInMemory(dict(manifest))
    return ctx


def process_simulation(ds, options: Mapping[str, Any] | None = None, folder: str | Path | None = None
                       ) -> dict[str, Any]:  # fmt: skip
    """Run the pipeline on one simulated dataset held in memory, and compare with its truth.

    The observation goes through the registered pipeline (``pipeline`` option,
    XBAND-GP by default), brick by brick, with the bricks' declared defaults, the
    ``parameters`` overrides and the CALDB given by the ``caldb`` option: exactly what
    ``mxt run`` does on the same data written as a dataset.

    Parameters
    ----------
    ds : SimulatedDataset
        What :func:`mxt_pipeline.simulate.bench.simulate` returned.
    options : mapping, optional
        Campaign options (module docstring).
    folder : path-like, optional
        Run folder: ``truth.json``, ``compare.json`` and, with ``write_products``, the
        bricks' products under ``products/``.

    Returns
    -------
    dict
        :func:`mxt_pipeline.campaign.truth_match.compare_run`'s record plus ``obs_id``,
        ``n_events``, ``exposure_s``, ``bkg_per_pixel``, ``brick_status`` and
        ``timing_s``.
    """
    opts = dict(options or {})
    for old, new in _RETIRED_OPTIONS.items():
        if old in opts:
            raise MXTInputError(f"campaign option {old!r} is now the brick parameter {new}: "
                                f"give it as parameters: {{{new.split('.')[0]!r}: {{{new.split('.')[1]!r}: ...}}}}",
                                keyword=old)  # fmt: skip
    sc = ds.scenario
    pipeline = get_pipeline(str(opts.get("pipeline", "xband-gp")))
    parameters = pipeline.check_parameters(dict(opts.get("parameters") or {}))
    values = {"l1_passes": {f"mxt_l1_raw_{sc.obs_id}_p{int(p.meta['PASS_ID']):02d}": p for p in ds.passes},
              "attitude": ds.attitude, "angles": ds.angles, "saa": list(ds.saa.values())}  # fmt: skip
    keep = folder is not None and bool(opts.get("write_products", True))
    with contextlib.ExitStack() as stack:
        if keep:
            out = Path(folder) / PRODUCTS_DIR
            shutil.rmtree(out, ignore_errors=True)
        else:
            out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mxt-campaign-")))
        ctx = chain_context(values, scenario_manifest(sc), _provider(opts.get("caldb")), parameters, out)
        result = pipeline.run(ctx)
        clock = dict(result.timings())
        failed = result.failed
        if failed is not None and failed.exception is not None:
            raise failed.exception
        events = ctx.values["events"]
        srclist = ctx.values.get("srclist")
        table = srclist.table if srclist is not None else None
        bands = srclist.bands if srclist is not None else list(as_bands(parameters.get("detect", {}).get("bands")))
        lcs = {int(lc.meta["SRC_ID"]): lc for lc in (ctx.values.get("light_curves") or {}).values()}
        bad_mask = DetectionCalibration.from_calset(ctx.bundle(DETECT_CALDB)).bad_mask
        t3 = time.perf_counter()
        e_lo, e_hi = min(b.e_min for b in bands), max(b.e_max for b in bands)
        true_counts = true_counts_in_gti(ds, events.gti, e_lo, e_hi)
        record = compare_run(ds.truth, table, true_counts=true_counts, light_curves=lcs,
                             events_energy_kev=line_event_energies(events) if len(events) else None,
                             gti=events.gti, tol=Tolerances.from_options(opts))  # fmt: skip
        clock["compare"] = time.perf_counter() - t3
        record.update(
            obs_id=sc.obs_id,
            n_events=len(events),
            exposure_s=float(events.gti.exposure) if len(events.gti) else 0.0,
            bkg_per_pixel=background_per_pixel(events, table, bands, bad_mask) if table is not None else None,
            brick_status={b.name: str(b.status) for b in result.bricks},
        )
        if keep and not opts.get("keep_events", False):
            for rec in ctx.records.get("events", []):
                ctx.path_of(rec).unlink(missing_ok=True)
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        write_truth(Path(folder) / "truth.json", ds.truth)
        write_json(Path(folder) / COMPARE_FILE, record)
    record["timing_s"] = clock
    return record


def simulate_and_process(task) -> dict[str, Any]:
    """Run function of the campaign runner: one simulated observation, end to end.

    Parameters
    ----------
    task : RunTask
        ``case`` (``grb``, ``gp``, ``montecarlo``), ``seed`` (the run's seed: case
        preset and bench), ``folder`` (per-run products) and the campaign ``options``.

    Returns
    -------
    dict
        The comparison record (see :func:`process_simulation`), JSON-serialisable.
    """
    t0 = time.perf_counter()
    scenario = _scenario(task)
    caldb = task.options.get("caldb")
    calset, info = _calibration(None if caldb is None else str(caldb), int(math.floor(scenario.tstart / 86400.0)))
    ds = simulate(scenario, int(task.seed), calset, caldb_info=info)
    t_sim = time.perf_counter() - t0
    result = process_simulation(ds, task.options, task.folder)
    result["timing_s"] = {"simulate": t_sim, **result["timing_s"]}
    return result


def crlb_versus_counts(
    options: Mapping[str, Any] | None = None,
    *,
    background_per_pixel: Any = None,
    calibration: Any = None,
    counts: np.ndarray = CRLB_COUNTS,
    theta_arcmin: float = 0.0,
) -> Callable[[np.ndarray], np.ndarray]:
    """The Cramer-Rao bound on a position versus the source counts, from the CALDB PSF.

    The bound of :func:`mxt_pipeline.detect.crlb.position_bound` (counts and background
    free) for a source on the whole chip at ``theta_arcmin``, its counts shared among
    the detection bands as a power law of index 2 through the effective area, computed
    at ``counts`` and interpolated in log-log.

    Parameters
    ----------
    options : mapping, optional
        Campaign options: ``caldb``, ``bands``.
    background_per_pixel : float or sequence, optional
        Background counts per pixel in each band (a campaign's median, see
        ``bkg_per_pixel`` of the run records); default 0 (PSF-limited bound).
    calibration : DetectionCalibration, optional
        Use it instead of the CALDB.
    counts : ndarray
        Source counts at which the bound is computed.
    theta_arcmin : float
        Off-axis angle of the PSF.

    Returns
    -------
    callable
        ``f(counts) -> sigma`` : the 1-sigma bound per axis (arcsec, root mean square of
        the two axes); what :func:`mxt_pipeline.campaign.ensemble_report.write_html_report` draws.
    """
    opts = dict(options or {})
    cal = calibration if calibration is not None else DetectionCalibration.from_caldb(opts.get("caldb"))
    bands = as_bands(opts.get("bands"))
    psfs = cal.band_psfs(bands)
    frac = np.asarray(cal.band_count_fractions(bands), float)
    bkg = np.broadcast_to(np.asarray(0.0 if background_per_pixel is None else background_per_pixel, float),
                          (len(bands),)).astype(float)  # fmt: skip
    if np.any(bkg < 0) or not np.all(np.isfinite(bkg)):
        raise MXTInputError(f"background per pixel must be finite and >= 0, got {bkg.tolist()}")
    counts = np.asarray(counts, float)
    edges = np.arange(C.N_PIX + 1, dtype=float) - C.N_PIX / 2
    sigma = np.array([
        np.sqrt(np.mean(np.diag(position_bound(psfs, edges, edges, 0.0, 0.0, n * frac, bkg, theta=theta_arcmin
                                                ).covariance)))
        for n in counts
    ]) * C.PIXEL_SCALE_ARCSEC  # fmt: skip
    log_n, log_s = np.log(counts), np.log(sigma)

    def bound(n: np.ndarray) -> np.ndarray:
        """1-sigma Cramer-Rao bound per axis (arcsec) at ``n`` source counts."""
        x = np.log(np.asarray(n, float))
        # Linear in log-log inside the grid, extrapolated with the end slopes.
        y = np.interp(x, log_n, log_s)
        lo_slope = (log_s[1] - log_s[0]) / (log_n[1] - log_n[0])
        hi_slope = (log_s[-1] - log_s[-2]) / (log_n[-1] - log_n[-2])
        y = np.where(x < log_n[0], log_s[0] + lo_slope * (x - log_n[0]), y)
        y = np.where(x > log_n[-1], log_s[-1] + hi_slope * (x - log_n[-1]), y)
        return np.exp(y)

    return bound
