"""Reprocessing jobs started from the console, run in the background.

A job reprocesses one published collection with a chosen CALDB through the project's
reprocessing code (:func:`mxt_pipeline.pipelines.reprocess.reprocess`), the code path
of ``mxt run --reprocess``.  It runs out of the web server's process: on the
campaign's dask cluster when the console is given its scheduler address, otherwise in
a local process pool (``spawn``: a forked copy of a threaded server is not safe).

Idempotency is the command line's: while a job for the same collection and CALDB is
queued or running, launching it again returns that job; once it has finished,
launching it again runs the reprocessing again, which recognises the run key and
answers "already processed" without publishing anything.  The staging lock of the
pipeline (status BUSY) covers a second console or a command line started meanwhile.

The token is never handed to a job: the worker resolves it as every pipeline run does
(``$MXT_TOKEN`` inherited by the worker process, or the worker's own environment on a
cluster), so it crosses no pipe, no network and no log.
"""

from __future__ import annotations

import logging
import multiprocessing
import secrets
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mxt_pipeline.console.scan import resolve_inside
from mxt_pipeline.errors import MXTError, MXTInputError
from mxt_pipeline.pipelines.reprocess import reprocess

__all__ = ["CaldbChoice", "Job", "JobManager", "run_reprocess_job"]

log = logging.getLogger(__name__)

#: Job states.
QUEUED, RUNNING, DONE, FAILED = "QUEUED", "RUNNING", "DONE", "FAILED"


@dataclass(frozen=True)
class CaldbChoice:
    """A calibration database the operator may choose: a name and a local root (None: default)."""

    name: str
    path: str | None
    description: str = ""


def run_reprocess_job(collection_dir: str, caldb: str | None) -> dict[str, Any]:
    """Reprocess one collection (runs in the worker); a JSON-able outcome.

    Every failure is an outcome (``ok`` False with the error's type and message), never
    an exception: the console shows it as the command line would.
    """
    t0 = time.time()
    try:
        outcome = reprocess(collection_dir, caldb=caldb)
    except MXTError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "elapsed_s": time.time() - t0}
    except Exception as exc:  # a bug, or a manifest the reprocessing cannot read: shown, not raised
        log.exception("reprocessing %s failed", collection_dir)
        return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}", "elapsed_s": time.time() - t0}
    st = outcome.status
    return {
        "ok": True,
        "status": str(st.status),
        "exit_code": st.exit_code,
        "already_done": bool(st.already_done),
        "collection": str(outcome.collection) if outcome.collection is not None else None,
        "reason": st.reason,
        "changed_inputs": list(outcome.extra.get("changed_inputs", [])),
        "elapsed_s": time.time() - t0,
    }


@dataclass
class Job:
    """One reprocessing launched from the console."""

    id: str
    source: str  # collection key (relative to the root)
    caldb: str  # CALDB choice name
    state: str = QUEUED
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: dict[str, Any] | None = None
    new_key: str | None = None  # key of the collection the job published or found

    @property
    def active(self) -> bool:
        return self.state in (QUEUED, RUNNING)

    def to_dict(self) -> dict[str, Any]:
        r = self.result or {}
        return {
            "id": self.id, "source": self.source, "caldb": self.caldb, "state": self.state,
            "submitted": self.submitted, "started": self.started, "finished": self.finished,
            "status": r.get("status"), "already_done": r.get("already_done"), "error": r.get("error"),
            "new_key": self.new_key,
            "elapsed_s": (self.finished or time.time()) - (self.started or self.submitted),
        }  # fmt: skip


class JobManager:
    """Launches reprocessing jobs and keeps their state (in memory).

    Parameters
    ----------
    root : Path
        The served root (resolved).
    caldbs : list of CaldbChoice
        The calibrations the operator may choose from.
    scheduler : str, optional
        Address of the campaign's dask scheduler; jobs are submitted there.
    workers : int
        Size of the local process pool (without a scheduler).
    """

    def __init__(self, root: Path, caldbs: list[CaldbChoice], *, scheduler: str | None = None, workers: int = 1) -> None:
        if not caldbs:
            raise MXTInputError("no CALDB to choose from")
        names = [c.name for c in caldbs]
        if len(set(names)) != len(names):
            raise MXTInputError(f"CALDB names must be unique: {names}")
        self.root = root
        self.caldbs = {c.name: c for c in caldbs}
        self.scheduler = scheduler
        self.workers = workers
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._executor: Executor | None = None
        self._client: Any = None

    @property
    def backend(self) -> str:
        return f"dask scheduler {self.scheduler}" if self.scheduler else f"local process pool ({self.workers} worker(s))"

    def _submit(self, collection_dir: str, caldb: str | None) -> Any:
        if self.scheduler:
            if self._client is None:
                from distributed import Client

                self._client = Client(self.scheduler)
            return self._client.submit(run_reprocess_job, collection_dir, caldb, pure=False)
        if self._executor is None:
            self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._executor.submit(run_reprocess_job, collection_dir, caldb)

    def launch(self, source_key: str, caldb_name: str) -> tuple[Job, bool]:
        """Start reprocessing ``source_key`` with CALDB ``caldb_name``.

        Returns
        -------
        (Job, bool)
            The job, and True when it was started now (False: the same job was
            already queued or running, and is returned instead).

        Raises
        ------
        MXTInputError
            Unknown CALDB, or ``source_key`` is not a published collection under the root.
        """
        choice = self.caldbs.get(caldb_name)
        if choice is None:
            raise MXTInputError(f"unknown CALDB {caldb_name!r} (choose one of {sorted(self.caldbs)})")
        src = resolve_inside(self.root, source_key)
        if not (src / "manifest.json").is_file():
            raise MXTInputError("not a published collection: no manifest", file=source_key)
        with self._lock:
            for job in self._jobs.values():
                if job.active and job.source == source_key and job.caldb == caldb_name:
                    return job, False
            job = Job(secrets.token_hex(6), source_key, caldb_name)
            self._jobs[job.id] = job
        log.info("reprocess %s with CALDB %s: job %s on %s", source_key, caldb_name, job.id, self.backend)
        fut = self._submit(str(src), choice.path)
        job.state = RUNNING
        job.started = time.time()
        fut.add_done_callback(lambda f, job=job: self._finished(job, f))
        return job, True

    def _finished(self, job: Job, fut: Future) -> None:
        try:
            result = fut.result()
        except Exception as exc:  # the worker died, or the cluster went away
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        new_key = None
        if result.get("collection"):
            p = Path(result["collection"])
            try:
                new_key = p.resolve().relative_to(self.root).as_posix()
            except ValueError:
                new_key = None
        with self._lock:
            job.result = result
            job.new_key = new_key
            job.finished = time.time()
            job.state = DONE if result.get("ok") else FAILED
        log.info("job %s: %s %s", job.id, job.state, result.get("status") or result.get("error", ""))

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: -j.submitted)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:
            self._client.close()
