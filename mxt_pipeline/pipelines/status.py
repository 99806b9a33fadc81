"""The ``{processing_status}`` of a run: values the scheduler recognises, exit codes.

Every run writes ``processing_status.json`` in its output folder, atomically, when it
starts, before each brick and when it ends, so that whatever happens (a failure, a
``kill -9``) the file says how far the run went.  The scheduler reads ``status`` and
the process exit code, which always agree (:data:`EXIT_CODES`).

Statuses (also in ``docs/pipelines.md``):

=====================  ====  ==========================================================
status                 exit  meaning
=====================  ====  ==========================================================
SUCCESS                0     every brick completed; the collection is published
PARTIAL                3     published, but a non-critical brick failed or an input was
                             missing (a pass not delivered yet): products are valid,
                             some are missing or of lower quality; rerun when complete
NO_DATA                4     published with valid but empty products (no good time,
                             no event)
BAD_INPUT              10    an input file is missing, corrupted or inconsistent, or
                             the runtime data / parameters are invalid
CALDB_ERROR            11    the CALDB answered, but has no usable file (no match,
                             ambiguous, a calibration file out of range)
CALDB_UNAVAILABLE      12    the CALDB service could not be reached after every retry
SERVICE_UNAVAILABLE    13    another FSC service (science database) could not be reached
AUTH_FAILED            14    a service refused the token (HTTP 401/403)
OUTPUT_ERROR           15    the products could not be written: disk full, quota,
                             file-size limit (``ulimit -f``), read-only or failing
                             disk; the inputs are fine, rerun once space is freed
BUSY                   75    another run is processing the same inputs right now
INTERRUPTED            80    stopped by a signal (SIGTERM, SIGINT); rerun resumes
INTERNAL_ERROR         70    a bug: an unexpected exception (traceback in the report)
RUNNING                -     the run is in progress, or died without a word (kill -9):
                             ``stopped_at`` names the brick it was in
=====================  ====  ==========================================================

Codes 1 and 2 are left to Python and click (uncaught crash, usage error), so a
scheduler can tell "the pipeline said so" from "the pipeline did not start".
"""

from __future__ import annotations

import enum
import errno
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mxt_pipeline.errors as errors
from mxt_pipeline.errors import (
    MXTAuthError,
    MXTCaldbError,
    MXTCalibrationError,
    MXTError,
    MXTFormatError,
    MXTInputError,
    MXTServiceError,
    MXTServiceUnavailable,
)
from mxt_pipeline.pipelines.brick import BrickResult, BrickStatus, ErrorInfo
from mxt_pipeline.pipelines.ports import write_json

__all__ = [
    "ProcessingStatus",
    "EXIT_CODES",
    "STATUS_FILE",
    "status_for_exception",
    "status_of_bricks",
    "StatusRecord",
    "write_status",
    "read_status",
    "Interrupted",
    "redact",
    "output_failure",
    "OUTPUT_ERRNOS",
]

#: Name of the status file in the output folder (and in each collection).
STATUS_FILE = "processing_status.json"


class ProcessingStatus(enum.StrEnum):
    """The processing statuses the scheduler recognises."""

    SUCCESS = "SUCCESS"
    PARTIAL = "PARTIAL"
    NO_DATA = "NO_DATA"
    BAD_INPUT = "BAD_INPUT"
    CALDB_ERROR = "CALDB_ERROR"
    CALDB_UNAVAILABLE = "CALDB_UNAVAILABLE"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    AUTH_FAILED = "AUTH_FAILED"
    OUTPUT_ERROR = "OUTPUT_ERROR"
    BUSY = "BUSY"
    INTERRUPTED = "INTERRUPTED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    RUNNING = "RUNNING"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self]

    @property
    def published(self) -> bool:
        """True for the statuses that come with a published collection."""
        return self in (ProcessingStatus.SUCCESS, ProcessingStatus.PARTIAL, ProcessingStatus.NO_DATA)


#: Exit code of each final status (RUNNING is never an exit status).
EXIT_CODES: dict[ProcessingStatus, int] = {
    ProcessingStatus.SUCCESS: 0,
    ProcessingStatus.PARTIAL: 3,
    ProcessingStatus.NO_DATA: 4,
    ProcessingStatus.BAD_INPUT: 10,
    ProcessingStatus.CALDB_ERROR: 11,
    ProcessingStatus.CALDB_UNAVAILABLE: 12,
    ProcessingStatus.SERVICE_UNAVAILABLE: 13,
    ProcessingStatus.AUTH_FAILED: 14,
    ProcessingStatus.OUTPUT_ERROR: 15,
    ProcessingStatus.INTERNAL_ERROR: 70,
    ProcessingStatus.BUSY: 75,
    ProcessingStatus.INTERRUPTED: 80,
    ProcessingStatus.RUNNING: -1,
}


class Interrupted(BaseException):
    """Raised in the main thread when a termination signal arrives (SIGTERM, SIGINT).

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` of a task
    swallows it.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by signal {signum}")


#: errno values of a write that failed for want of room or of a working disk.
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


def output_failure(exc: BaseException | None) -> OSError | None:
    """The OSError meaning "no room / no disk to write" behind ``exc`` (its causes included)."""
    seen = 0
    while exc is not None and seen < 16:
        if isinstance(exc, OSError) and exc.errno in OUTPUT_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def status_for_exception(exc: BaseException, phase: str | None = None) -> ProcessingStatus:
    """The processing status of a failure.

    Parameters
    ----------
    exc : BaseException
        What failed the run.
    phase : str, optional
        Where: a brick phase (``inputs``, ``caldb``, ``core``, ...) or ``preflight``
        (the CALDB resolution before the first brick), ``runtime`` (reading the
        runtime data).

    Notes
    -----
    Service errors are told apart by phase: during the CALDB resolution (phases
    ``caldb`` and ``preflight``) an unreachable service is the CALDB
    (CALDB_UNAVAILABLE); during input gathering it is the science database
    (SERVICE_UNAVAILABLE).  A format error in the CALDB phase is a bad calibration
    file (CALDB_ERROR), elsewhere a bad input (BAD_INPUT).
    """
    in_caldb = phase in ("caldb", "preflight")
    if isinstance(exc, (Interrupted, KeyboardInterrupt)):
        return ProcessingStatus.INTERRUPTED
    if output_failure(exc) is not None:
        return ProcessingStatus.OUTPUT_ERROR
    if isinstance(exc, MXTAuthError):
        return ProcessingStatus.AUTH_FAILED
    if isinstance(exc, MXTServiceUnavailable):
        return ProcessingStatus.CALDB_UNAVAILABLE if in_caldb else ProcessingStatus.SERVICE_UNAVAILABLE
    if isinstance(exc, MXTServiceError):
        # The service answered an error (400, other 4xx): for the CALDB a query it
        # cannot serve; for the science database a request for data it does not have.
        return ProcessingStatus.CALDB_ERROR if in_caldb else ProcessingStatus.BAD_INPUT
    if isinstance(exc, (MXTCaldbError, MXTCalibrationError)):
        return ProcessingStatus.CALDB_ERROR
    if isinstance(exc, (MXTFormatError, MXTInputError)):
        return ProcessingStatus.CALDB_ERROR if in_caldb else ProcessingStatus.BAD_INPUT
    if isinstance(exc, MXTError):  # MXTPipelineError and future subclasses: a bug
        return ProcessingStatus.INTERNAL_ERROR
    return ProcessingStatus.INTERNAL_ERROR


def status_of_bricks(results: Sequence[BrickResult]) -> ProcessingStatus:
    """The run status from the brick results.

    The first failed critical brick decides (through its error); otherwise any
    failed, skipped or degraded brick makes the run PARTIAL; otherwise a NO_DATA
    brick makes it NO_DATA; otherwise SUCCESS.
    """
    for r in results:
        # A full disk in any brick, critical or not: publishing would fail as well.
        if r.status is BrickStatus.FAILED and output_failure(r.exception) is not None:
            return ProcessingStatus.OUTPUT_ERROR
    for r in results:
        if r.status is BrickStatus.FAILED and r.critical:
            phase = r.error.phase if r.error else None
            if r.exception is not None:
                return status_for_exception(r.exception, phase)
            return _status_from_error_info(r.error)
    if any(r.status in (BrickStatus.FAILED, BrickStatus.SKIPPED, BrickStatus.DEGRADED) for r in results):
        return ProcessingStatus.PARTIAL
    if any(r.status is BrickStatus.NO_DATA for r in results):
        return ProcessingStatus.NO_DATA
    return ProcessingStatus.SUCCESS


def _status_from_error_info(info: ErrorInfo | None) -> ProcessingStatus:
    """Status of a failure known only from its record (a resumed attempt)."""
    if info is None:
        return ProcessingStatus.INTERNAL_ERROR

    cls = getattr(errors, info.type, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            exc = cls(info.message)
        except TypeError:
            return ProcessingStatus.INTERNAL_ERROR
        return status_for_exception(exc, info.phase)
    return ProcessingStatus.INTERNAL_ERROR


def _now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class StatusRecord:
    """Content of ``processing_status.json``.

    Attributes
    ----------
    status : ProcessingStatus
    pipeline, obs_id : str
    started, updated : str
        UTC times.
    stopped_at : dict, optional
        ``{"brick": name, "index": k, "phase": phase}``: where a failed or unfinished
        run stopped (``phase`` ``preflight`` for the CALDB resolution, ``runtime`` for
        the runtime data, ``publish`` for the publication).
    reason : dict, optional
        The error: type, message, file/HDU/column/keyword, phase.
    bricks : list of dict
        ``{"name", "status", "elapsed_s"}`` of every brick so far.
    collection : str, optional
        The published collection (folder name) when there is one.
    already_done : bool
        The same inputs had already been processed with the same versions: nothing was
        run, ``collection`` names the existing collection.
    early_products : list of str
        Fast products published before the end (XBAND-CP), relative paths.
    versions : dict
        Pipeline and CALDB versions.
    """

    status: ProcessingStatus
    pipeline: str = ""
    obs_id: str = ""
    started: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)
    stopped_at: dict[str, Any] | None = None
    reason: dict[str, Any] | None = None
    bricks: list[dict[str, Any]] = field(default_factory=list)
    collection: str | None = None
    already_done: bool = False
    early_products: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    run_key: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        out = {
            "status": str(self.status),
            "exit_code": None if self.status is ProcessingStatus.RUNNING else self.exit_code,
            "pipeline": self.pipeline,
            "obs_id": self.obs_id,
            "started": self.started,
            "updated": self.updated,
            "stopped_at": self.stopped_at,
            "reason": self.reason,
            "bricks": self.bricks,
            "collection": self.collection,
            "already_done": self.already_done,
            "early_products": self.early_products,
            "versions": self.versions,
            "run_key": self.run_key,
        }
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StatusRecord:
        return cls(
            status=ProcessingStatus(d["status"]),
            pipeline=d.get("pipeline", ""),
            obs_id=d.get("obs_id", ""),
            started=d.get("started", ""),
            updated=d.get("updated", ""),
            stopped_at=d.get("stopped_at"),
            reason=d.get("reason"),
            bricks=list(d.get("bricks", [])),
            collection=d.get("collection"),
            already_done=bool(d.get("already_done", False)),
            early_products=list(d.get("early_products", [])),
            versions=dict(d.get("versions", {})),
            run_key=d.get("run_key"),
        )


def write_status(folder: str | os.PathLike[str], record: StatusRecord, *, redact: Sequence[str] = ()) -> Path:
    """Write ``processing_status.json`` in ``folder`` atomically.

    ``redact`` lists secrets that must not appear (the token): any occurrence in a
    message is replaced by ``***`` before writing.
    """
    record.updated = _now()
    data = _redact_json(record.to_dict(), list(redact))
    return write_json(Path(folder) / STATUS_FILE, data)


def read_status(folder: str | os.PathLike[str]) -> StatusRecord:
    """Read ``processing_status.json`` of a folder."""
    import json

    path = Path(folder) / STATUS_FILE
    return StatusRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))


def redact(obj: Any, secrets: Sequence[str]) -> Any:
    """A copy of a JSON-like object with every occurrence of each secret replaced by ``***``."""
    secrets = [s for s in secrets if s]
    if not secrets:
        return obj
    if isinstance(obj, str):
        for s in secrets:
            obj = obj.replace(s, "***")
        return obj
    if isinstance(obj, Mapping):
        return {k: redact(v, secrets) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v, secrets) for v in obj]
    return obj


_redact_json = redact
