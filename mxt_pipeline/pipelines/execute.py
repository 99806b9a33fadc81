"""Run a pipeline for a :class:`~mxt_pipeline.pipelines.runtime.RunRequest`, end to end.

:func:`execute` is what ``mxt run`` and the scheduler call.  In order:

1. ``processing_status.json`` says RUNNING (phase ``runtime``);
2. the parameters of every brick are validated (BAD_INPUT on a typo);
3. *preflight*: every CALDB code name of the pipeline is resolved for the observation
   date (a CALDB that is down ends CALDB_UNAVAILABLE before any work), the input
   files and the calibration files are hashed, the run key is computed;
4. a published collection with the same run key ends the run at once (``already_done``);
5. the staging area of the run key is taken (BUSY if another process holds it), its
   journal verified: bricks completed by an interrupted attempt are taken over;
6. the bricks run; the status file names the brick in progress, the journal records
   each completed brick;
7. when the run ends SUCCESS, PARTIAL or NO_DATA, the report and the manifest are
   written and the collection published by an atomic rename; otherwise the staging
   area stays for a resume and the report goes beside it.  What differs between two
   identical runs (start and end times, durations, the timestamped log) is not
   published: it goes to ``run_records/<collection>/`` (``timings.json``,
   ``run.log``), so that the collections are byte-identical under
   ``SOURCE_DATE_EPOCH``;
8. the final status is written; its exit code is the process exit code.

A termination signal (SIGTERM, SIGINT) stops the run between two array operations with
status INTERRUPTED; ``kill -9`` leaves the status RUNNING at the brick it was in, and
the rerun resumes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mxt_pipeline._version import __version__
from mxt_pipeline.caldb.select import met_to_datetime
from mxt_pipeline.errors import MXTError, MXTFormatError, MXTInputError
from mxt_pipeline.io import read_header
from mxt_pipeline.io.fits import atomic_write_bytes, product_date
from mxt_pipeline.pipelines.attitude_source import (
    attitude_record,
    fetch_run_attitude,
    needs_service_attitude,
)
from mxt_pipeline.pipelines.brick import Brick, BrickResult, ErrorInfo
from mxt_pipeline.pipelines.caldb_bundle import CaldbFile, caldb_version, provider_from
from mxt_pipeline.pipelines.collection import (
    Busy,
    CollectionStore,
    StagingArea,
    compute_run_key,
    write_manifest,
)
from mxt_pipeline.pipelines.context import RunContext
from mxt_pipeline.pipelines.pipeline import Pipeline, PipelineResult
from mxt_pipeline.pipelines.ports import FileRecord, file_record, write_json
from mxt_pipeline.pipelines.registry import get_pipeline
from mxt_pipeline.pipelines.run_report import build_report, split_clock, write_report
from mxt_pipeline.pipelines.runtime import RunRequest, request_from_dataset
from mxt_pipeline.pipelines.status import (
    STATUS_FILE,
    Interrupted,
    ProcessingStatus,
    StatusRecord,
    output_failure,
    redact,
    status_for_exception,
    status_of_bricks,
    write_status,
)
from mxt_pipeline.services.attitude import FetchedAttitude

__all__ = ["RunOutcome", "execute", "run_dataset", "observation_date", "FAST_DIR", "LOG_FILE", "RECORDS_DIR",
           "TIMINGS_FILE"]

log = logging.getLogger(__name__)

#: Folder (in the output folder) of the fast products of XBAND-CP.
FAST_DIR = "fast"
#: Log of the run (timestamped: kept in the run's record, beside the collection).
LOG_FILE = "run.log"
#: Folder of the output folder holding, per collection, what is not published: the
#: timings (``timings.json``) and the log (``run.log``).
RECORDS_DIR = "run_records"
#: Folder of ``run_records`` receiving inputs fetched from services (the attitude of a
#: dataset without ATT file), kept as the record of what a run used.
SERVICE_INPUTS_DIR = "service_inputs"
#: Wall-clock readings of a run: start and end, total, per brick and per phase.
TIMINGS_FILE = "timings.json"


@dataclass
class RunOutcome:
    """What a run produced."""

    status: StatusRecord
    collection: Path | None = None
    result: PipelineResult | None = None
    report: dict[str, Any] | None = None
    staging: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return self.status.exit_code


def _now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: Packets read from the head of each packet file to date a telemetry observation: the
#: downlink reorders packets only locally, so the earliest of these is the pass start to
#: within frames, far below the validity steps of calibration files.
DATING_PACKETS = 64


def _telemetry_start(files) -> float | None:
    """Earliest packet time (MET) at the head of the packet files; None when none is valid."""
    # lazy: spacepackets/fastcrc load only for telemetry datasets, never for an L1 run (#18)
    from mxt_pipeline.io.telemetry_stream import read_packet_file
    from mxt_pipeline.telemetry.packets import parse_packet

    times = []
    for f in files:
        for raw in read_packet_file(f, max_packets=DATING_PACKETS):
            try:
                times.append(parse_packet(raw).cuc_time)
            except MXTFormatError:
                continue  # a corrupted packet: preprocess counts it; the next valid one dates the pass
    return min(times) if times else None


def observation_date(request: RunRequest) -> datetime | None:
    """Date of the CALDB selection: the observation start.

    From the manifest's ``tstart``, else the earliest ``TSTART`` of the L1 files, else
    (telemetry inputs) the earliest time code of the packets; None only when none of
    them is known.
    """
    tstart = request.inputs.manifest.get("tstart")
    if tstart is None and request.inputs.telemetry:
        tstart = _telemetry_start(request.inputs.telemetry)
    if tstart is None:
        starts = []
        for p in request.inputs.l1:
            hdr = read_header(p)
            if "TSTART" in hdr:
                value = hdr["TSTART"]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                    raise MXTFormatError(f"value {value!r} is not a finite number of seconds", file=p, hdu=0,
                                         keyword="TSTART")  # fmt: skip
                starts.append(float(value))
        tstart = min(starts) if starts else None
    return None if tstart is None else met_to_datetime(float(tstart))


class _RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__("%(asctime)s %(name)s %(levelname)s: %(message)s")
        self._secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for s in self._secrets:
            text = text.replace(s, "***")
        return text


@contextlib.contextmanager
def _run_log(path: Path, secrets: list[str]) -> Iterator[None]:
    """Copy the package's log records of the run into ``path`` (token redacted)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(_RedactingFormatter(secrets))
    handler.setLevel(logging.INFO)
    pkg = logging.getLogger("mxt_pipeline")
    old_level = pkg.level
    pkg.addHandler(handler)
    if pkg.getEffectiveLevel() > logging.INFO:
        pkg.setLevel(logging.INFO)
    try:
        yield
    finally:
        pkg.removeHandler(handler)
        pkg.setLevel(old_level)
        handler.close()


@contextlib.contextmanager
def _signals_as_interrupts(enabled: bool) -> Iterator[None]:
    """Turn SIGTERM and SIGINT into :class:`Interrupted` in the main thread."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _build_provider(request: RunRequest):
    """The calibration provider of a request: the CALDB service, a local CALDB or an object."""
    if request.caldb_url:
        return provider_from(None, url=request.caldb_url, token=request.token, max_tries=request.max_tries)
    return provider_from(request.caldb, token=request.token, max_tries=request.max_tries)


def execute(
    request: RunRequest,
    *,
    pipeline: Pipeline | None = None,
    handle_signals: bool = False,
) -> RunOutcome:
    """Run ``request`` and return its outcome (the status file is always written).

    Parameters
    ----------
    request : RunRequest
    pipeline : Pipeline, optional
        Default: the registered pipeline named in the request.
    handle_signals : bool
        Turn SIGTERM/SIGINT into a clean INTERRUPTED status (the command line does).

    Returns
    -------
    RunOutcome
        Never raises for a failure of the run: the status says what happened.
    """
    out = Path(request.output_dir)
    secrets = [request.token.reveal()] if request.token is not None else []
    status = StatusRecord(ProcessingStatus.RUNNING, pipeline=request.pipeline, obs_id=request.target.obs_id,
                          stopped_at={"phase": "runtime"})  # fmt: skip
    status.versions = {"pipeline": __version__}
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_status(out, status, redact=secrets)
    except OSError as exc:
        # The output folder itself is unusable (a file, under /proc, no permission):
        # a bad request, with no status file possible; the exit code says it.
        return _unusable_output(out, status, exc, secrets)
    t0 = time.perf_counter()
    outcome = RunOutcome(status)
    area: StagingArea | None = None
    phase = "runtime"
    try:
        with _signals_as_interrupts(handle_signals):
            if pipeline is None:
                pipeline = get_pipeline(request.pipeline, telemetry=getattr(request.inputs, "from_telemetry", False))
            effective = pipeline.check_parameters(request.parameters)

            # ---- inputs: checksums and observation date --------------------------------------
            t_pre = time.perf_counter()
            phase = "inputs"
            status.stopped_at = {"phase": phase}
            inputs = [file_record(role, p, role="input") for role, p in request.inputs.files()]
            fetched = None
            if needs_service_attitude(request.inputs):
                # No ATT file: the attitude service's answer is this run's attitude input.
                fetched = fetch_run_attitude(request, effective, out / RECORDS_DIR / SERVICE_INPUTS_DIR)
                inputs.append(attitude_record(fetched))
            obs_date = observation_date(request)

            # ---- preflight: every CALDB code name, then the run key ---------------------------
            phase = "preflight"
            status.stopped_at = {"phase": phase}
            write_status(out, status, redact=secrets)
            provider = _build_provider(request)
            caldb_files: dict[str, CaldbFile] = provider.resolve(pipeline.caldb_codes, obs_date) if pipeline.caldb_codes else {}
            cver = caldb_version(caldb_files.values())
            status.versions["caldb"] = cver
            caldb_dicts = [f.to_dict() for f in caldb_files.values()]
            key = compute_run_key(request.pipeline, __version__, request.target.to_dict(), inputs, caldb_dicts, effective)
            status.run_key = key
            preflight_s = time.perf_counter() - t_pre

            store = CollectionStore(out)
            done = store.find_done(key)
            if done is not None and not request.force:
                status.status = ProcessingStatus(done.status)
                status.already_done = True
                status.collection = done.name
                status.stopped_at = None
                status.bricks = [{"name": b["name"], "status": b["status"]} for b in done.manifest.get("bricks", [])]
                write_status(out, status, redact=secrets)
                log.info("already processed with the same inputs and versions: %s", done.name)
                outcome.collection = done.path
                return outcome

            phase = "staging"
            area = store.staging(key)
            completed = area.read_journal(key)
            store.clean_stale_staging()
            outcome.staging = area.path

            # ---- the bricks ----------------------------------------------------------------
            phase = "bricks"
            ctx = _context(request, pipeline, area.path, provider, caldb_files, obs_date, out, status, secrets, inputs,
                           fetched)  # fmt: skip
            history: list[BrickResult] = []

            def on_start(brick: Brick, index: int) -> None:
                status.stopped_at = {"brick": brick.name, "index": index, "phase": "running"}
                write_status(out, status, redact=secrets)

            def on_end(brick: Brick, res: BrickResult) -> None:
                history.append(res)
                status.bricks.append({"name": res.name, "status": str(res.status), "elapsed_s": round(res.elapsed_s, 3)})
                area.record(key, history)

            with _run_log(area.path / LOG_FILE, secrets):
                log.info("run %s of %s: pipeline %s, CALDB %s", key[:12], request.target.obs_id, __version__, cver)
                if completed:
                    log.info("resuming: taking over %s", ", ".join(completed))
                result = pipeline.run(ctx, progress=request.progress, completed=completed,
                                      on_start=on_start, on_end=on_end)  # fmt: skip
            outcome.result = result
            final = status_of_bricks(result.bricks)
            failed = result.failed
            status.status = final
            status.stopped_at = None
            status.reason = None
            if failed is not None and failed.error is not None:
                status.stopped_at = {"brick": failed.name, "index": [b.name for b in pipeline.bricks].index(failed.name),
                                     "phase": failed.error.phase}  # fmt: skip
                status.reason = failed.error.to_dict()
                status.reason.pop("traceback", None)

            # ---- report, manifest, publication --------------------------------------------
            phase = "publish"
            timing = {"preflight_s": preflight_s, "bricks_s": result.elapsed_s}
            report_args = dict(
                pipeline=request.pipeline, bricks=result.bricks, target=request.target.to_dict(),
                inputs=inputs, caldb=caldb_dicts, versions=status.versions, run_key=key,
                missing_inputs=[str(p) for p in request.inputs.missing_l1],
            )  # fmt: skip
            if final.published:
                stem = {"pipeline": request.pipeline, "obs_id": request.target.obs_id,
                        "caldb_version": cver, "pipeline_version": __version__}  # fmt: skip
                products = [r for b in result.bricks for r in b.outputs]

                def finalize(name: str, counter: int) -> None:
                    timing["total_s"] = time.perf_counter() - t0
                    status.collection = name
                    report = build_report(status=str(final), timing=timing, started=status.started,
                                          finished=_now(), collection=name, stopped_at=status.stopped_at,
                                          reason=status.reason, **report_args)  # fmt: skip
                    outcome.report = report
                    # Wall-clock readings (times, durations, the timestamped log) go to the
                    # run's record beside the collection, not into it: two identical runs
                    # publish byte-identical collections (under SOURCE_DATE_EPOCH).
                    published, clock = split_clock(report)
                    record_dir = out / RECORDS_DIR / name
                    write_json(record_dir / TIMINGS_FILE, redact(clock, secrets))
                    run_log = area.path / LOG_FILE
                    if run_log.exists():
                        os.replace(run_log, record_dir / LOG_FILE)
                    write_report(area.path, redact(published, secrets))
                    write_json(area.path / STATUS_FILE, redact(_published_status(status), secrets))
                    header = {
                        "pipeline": request.pipeline, "pipeline_version": __version__, "caldb_version": cver,
                        "run_key": key, "status": str(final), "created": _stamp(),
                        "target": request.target.to_dict(), "request": request.describe(),
                        "inputs": [r.to_dict() for r in inputs], "caldb": caldb_dicts,
                        "bricks": [{"name": b.name, "status": str(b.status)} for b in result.bricks],
                        "parameters": effective,
                    }  # fmt: skip
                    write_manifest(area.path, name, counter, header=redact(header, secrets), products=products)

                outcome.collection = store.publish(area, stem, finalize)
                area = None
            else:
                timing["total_s"] = time.perf_counter() - t0
                report = build_report(status=str(final), timing=timing, started=status.started, finished=_now(),
                                      stopped_at=status.stopped_at, reason=status.reason, **report_args)  # fmt: skip
                outcome.report = report
                write_report(area.path, redact(report, secrets))
                # The staging area is hidden (and kept for a resume): the report of a run
                # that published nothing is also written where people look, beside the status.
                write_report(out / "failed" / f"{request.pipeline}_{request.target.obs_id}", redact(report, secrets))
            write_status(out, status, redact=secrets)
            return outcome
    except BaseException as exc:
        if isinstance(exc, Busy):
            status.status = ProcessingStatus.BUSY
        else:
            status.status = status_for_exception(exc, phase)
        if status.stopped_at is None or "brick" not in status.stopped_at or phase != "bricks":
            status.stopped_at = {"phase": phase}
        else:
            status.stopped_at = {**status.stopped_at, "phase": "interrupted" if isinstance(exc, (Interrupted, KeyboardInterrupt)) else phase}
        info = ErrorInfo.from_exception(exc, phase)
        status.reason = info.to_dict()
        try:
            write_status(out, status, redact=secrets)
        except OSError as err:
            # Even the status cannot be written (the disk is full): the atomic write
            # left the previous status file whole; the exit code still tells.
            log.error("could not write %s (%s); the previous status file is kept", STATUS_FILE, err.strerror or err)
        if not isinstance(exc, (Exception, Interrupted, KeyboardInterrupt)):
            raise  # SystemExit and the like: status written, let them through
        if status.status is ProcessingStatus.INTERNAL_ERROR:
            log.exception("internal error in phase %s", phase)
        else:
            log.error("run failed (%s) in phase %s: %s", status.status, phase, info.message)
        return outcome
    finally:
        if area is not None:
            area.release()


def _stamp() -> str:
    """The time written into a collection: ``SOURCE_DATE_EPOCH`` when set, else now."""
    return product_date() + "Z"


def _published_status(status: StatusRecord) -> dict[str, Any]:
    """The status as published in a collection: without its wall-clock readings."""
    d = status.to_dict()
    d["started"] = d["updated"] = _stamp()
    d["bricks"] = [{k: v for k, v in b.items() if k != "elapsed_s"} for b in d["bricks"]]
    return d


def _unusable_output(out: Path, status: StatusRecord, exc: OSError, secrets: list[str]) -> RunOutcome:
    """Outcome of a run whose output folder cannot be created or written."""
    if output_failure(exc) is not None:
        status.status = ProcessingStatus.OUTPUT_ERROR
        err: BaseException = exc
    else:
        status.status = ProcessingStatus.BAD_INPUT
        err = MXTInputError(f"the output folder cannot be used: {exc.strerror or exc}", file=out, keyword="output_dir")
    status.stopped_at = {"phase": "runtime"}
    status.reason = redact(ErrorInfo.from_exception(err, "runtime").to_dict(), secrets)
    status.reason.pop("traceback", None)
    log.error("run refused (%s): %s", status.status, err)
    return RunOutcome(status)


def _context(request: RunRequest, pipeline: Pipeline, staging: Path, provider, caldb_files, obs_date,
             out: Path, status: StatusRecord, secrets: list[str], inputs: list[FileRecord],
             fetched: FetchedAttitude | None = None) -> RunContext:  # fmt: skip
    """The run context: external inputs, services, early publication of fast products.

    ``inputs`` are the records of the run key: their checksums are reused, not recomputed.
    ``fetched``: the attitude received from the service for inputs without an ATT file.
    """
    ctx = RunContext(
        out_dir=staging,
        naming={"obs_id": request.target.obs_id},
        parameters={k: dict(v) for k, v in request.parameters.items()},
        calibration=provider,
        obs_date=obs_date,
        caldb_files=dict(caldb_files),
        services={"token": request.token, "sdb_url": request.sdb_url, "max_tries": request.max_tries},
        target=request.target,
    )
    ctx.values["target"] = request.target
    ctx.values["observation"] = request.inputs
    ctx.input_digests = {r.path: (r.sha256, r.size) for r in inputs}
    for port, paths in request.inputs.port_files().items():
        if port in pipeline.external:
            ctx.provide_files(port, paths, kind="input")
    if fetched is not None and "attitude" in pipeline.external:
        ctx.provide_files("attitude", fetched.path, kind="input")
    # The observation's own record is its manifest; its data files are the other ports'.
    ctx.records["observation"] = [file_record("observation", p, role="input", key=role, known=ctx.input_digests)
                                  for role, p in request.inputs.files() if role == "manifest"]  # fmt: skip
    if request.inputs.missing_l1:
        ctx.input_warnings["observation"] = [
            f"L1 file not delivered: {p.name} (its time becomes a TELEMETRY gap)" for p in request.inputs.missing_l1
        ]

    def publish_early(brick: Brick, records: list[FileRecord]) -> None:
        for rec in records:
            src = ctx.path_of(rec)
            dest = out / FAST_DIR / Path(rec.path).name
            atomic_write_bytes(dest, src.read_bytes())
            rel = str(dest.relative_to(out))
            if rel not in status.early_products:
                status.early_products.append(rel)
        write_status(out, status, redact=secrets)
        log.info("fast products of %s published: %s", brick.name, ", ".join(Path(r.path).name for r in records))

    ctx.on_early_outputs = publish_early
    return ctx


def status_path(output_dir: str | Path) -> Path:
    """Path of the status file of an output folder."""
    return Path(output_dir) / STATUS_FILE


def run_dataset(dataset_dir: str | Path, pipeline: str, output_dir: str | Path, **kwargs: Any) -> RunOutcome:
    """Run a registered pipeline on a dataset folder (Python API of ``mxt run DATASET``).

    Keyword arguments are those of :func:`~mxt_pipeline.pipelines.runtime.request_from_dataset`
    (``caldb``, ``burst_position``, ``parameters``, ``force``, ...).  Never raises for
    a failed run: read ``outcome.status``.
    """
    try:
        request = request_from_dataset(dataset_dir, pipeline, output_dir, **kwargs)
    except MXTError as exc:
        status = StatusRecord(status_for_exception(exc, "inputs"), pipeline=pipeline, stopped_at={"phase": "inputs"},
                              reason=ErrorInfo.from_exception(exc, "inputs").to_dict())  # fmt: skip
        try:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            write_status(output_dir, status)
        except OSError as err:
            log.error("could not write the status in %s: %s", output_dir, err.strerror or err)
        return RunOutcome(status)
    return execute(request)
