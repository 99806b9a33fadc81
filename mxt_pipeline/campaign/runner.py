"""Run Monte-Carlo campaigns on dask.distributed, resumably.

A campaign is ``n`` independent runs of one case.  Each run gets its seed from the
campaign seed and its index (:mod:`mxt_pipeline.campaign.seeds`), works in its own
folder ``runs/run_NNNNN/`` and returns a result record; the client writes the record
atomically as ``runs/run_NNNNN/result.json``.  A run whose record exists is done:
restarting a campaign runs only the missing (or failed) runs.  When every run is done,
the records are gathered into one results table, sorted by run index, so the table does
not depend on how many workers ran it or in which order.

Workers must see the campaign folder (a local cluster does; on a remote cluster, put it
on a shared file system).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mxt_pipeline.campaign.seeds import run_seed
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io.fits import atomic_write_bytes

__all__ = ["CampaignSpec", "RunTask", "run_campaign", "run_dir", "load_results", "pending_runs"]

log = logging.getLogger(__name__)

SPEC_FILE = "campaign.json"
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class CampaignSpec:
    """What a campaign runs: the case, how many runs, the campaign seed and options.

    ``runner`` names the run function as ``"module:function"``; it is imported on the
    worker and called with one :class:`RunTask`, returning a JSON-serialisable dict.
    """

    case: str
    n: int
    seed: int
    runner: str = "mxt_pipeline.campaign.execute:simulate_and_process"
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> CampaignSpec:
        data = json.loads(text)
        return cls(**data)


@dataclass(frozen=True)
class RunTask:
    """One run: its index, its seed and its folder, with the campaign's case and options."""

    case: str
    index: int
    seed: int
    folder: str
    options: dict[str, Any]


def run_dir(out_dir: str | os.PathLike[str], index: int) -> Path:
    """Folder of run ``index``."""
    return Path(out_dir) / "runs" / f"run_{index:05d}"


def _result_path(out_dir: str | os.PathLike[str], index: int) -> Path:
    return run_dir(out_dir, index) / RESULT_FILE


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def pending_runs(out_dir: str | os.PathLike[str], n: int, retry_failed: bool = True) -> list[int]:
    """Indices of runs with no valid result record (or a failed one, when retried)."""
    todo = []
    for i in range(n):
        rec = _read_result(_result_path(out_dir, i))
        if rec is None or (retry_failed and rec.get("status") != "OK"):
            todo.append(i)
    return todo


def _resolve(runner: str) -> Callable[[RunTask], dict[str, Any]]:
    module, _, name = runner.partition(":")
    if not module or not name:
        raise MXTInputError(f"runner must be 'module:function', got {runner!r}")
    return getattr(importlib.import_module(module), name)


def execute_task(runner: str, task: RunTask) -> dict[str, Any]:
    """Run one task on a worker; never raises: a failure becomes a FAILED record."""
    t0 = time.perf_counter()
    Path(task.folder).mkdir(parents=True, exist_ok=True)
    try:
        result = dict(_resolve(runner)(task))
        status = str(result.pop("status", "OK"))
        error = None
    except Exception as exc:  # a run's failure must not stop the campaign
        result, status = {}, "FAILED"
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
    return {
        "index": task.index,
        "seed": task.seed,
        "case": task.case,
        "status": status,
        "error": error,
        "elapsed_s": time.perf_counter() - t0,
        "result": result,
    }


def _write_spec(out_dir: Path, spec: CampaignSpec) -> None:
    path = out_dir / SPEC_FILE
    if path.exists():
        old = CampaignSpec.from_json(path.read_text())
        if old != spec:
            raise MXTInputError(
                f"{path} describes another campaign ({old.case}, n={old.n}, seed={old.seed}); "
                "use a new folder",
                file=path,
            )
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, spec.to_json().encode())


def _make_client(scheduler: str | None, n_workers: int | None, processes: bool = True):
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(
        n_workers=n_workers or max(1, (os.cpu_count() or 1)),
        threads_per_worker=1,
        processes=processes,
        dashboard_address=None,
        # dask's start/stop chatter (cluster addresses, workers killed at shutdown,
        # closed-connection tracebacks) says nothing about the campaign: errors only.
        silence_logs=logging.ERROR,
    )
    return Client(cluster), cluster


def run_campaign(
    out_dir: str | os.PathLike[str],
    spec: CampaignSpec,
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    processes: bool = True,
) -> list[dict[str, Any]]:
    """Run (or resume) a campaign and return every run record, sorted by index.

    Parameters
    ----------
    out_dir : path-like
        Campaign folder (``campaign.json``, ``runs/``).
    spec : CampaignSpec
        What to run; a folder already holding another campaign is refused.
    scheduler : str, optional
        Address of an existing dask scheduler (``tcp://host:port``); a LocalCluster of
        ``n_workers`` single-threaded processes otherwise.
    n_workers : int, optional
        Workers of the local cluster (default: one per core).
    progress : bool
        Show a progress bar.
    on_result : callable, optional
        Called on the client with each record as it completes.
    processes : bool
        Local cluster workers as processes (default) or as threads of this process
        (tests, small campaigns: no start-up and compilation cost per worker).
    """
    out = Path(out_dir)
    _write_spec(out, spec)
    todo = pending_runs(out, spec.n)
    log.info("campaign %s: %d of %d runs to do", out, len(todo), spec.n)
    if todo:
        tasks = [
            RunTask(spec.case, i, run_seed(spec.seed, i), str(run_dir(out, i)), dict(spec.options))
            for i in todo
        ]
        quiet = _QuietDask()
        client, cluster = _make_client(scheduler, n_workers, processes)
        try:
            from distributed import as_completed

            futures = client.map(execute_task, [spec.runner] * len(tasks), tasks, pure=False)
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=len(tasks), desc=f"campaign {spec.case}", unit="run")
            for fut in as_completed(futures):
                record = fut.result()
                atomic_write_bytes(
                    _result_path(out, record["index"]), json.dumps(record, indent=2, default=_json_default).encode()
                )
                if on_result is not None:
                    on_result(record)
                if bar is not None:
                    bar.update(1)
            if bar is not None:
                bar.close()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
            quiet.restore()
    return load_results(out, range(spec.n))


class _QuietDask(logging.Filter):
    """Drop the dask/tornado records below ERROR until :meth:`restore` (their INFO and
    shutdown WARNING lines otherwise fill the terminal of ``mxt campaign run``).

    A filter on the terminal handlers, not a logger level: dask resets the levels of
    its loggers when a cluster closes, and the nanny warns after that.
    """

    NAMES = ("distributed", "tornado", "asyncio")

    def __init__(self) -> None:
        super().__init__()
        self._handlers = list(logging.getLogger().handlers)
        for h in self._handlers:
            h.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or record.name.split(".")[0] not in self.NAMES

    def restore(self) -> None:
        for h in self._handlers:
            h.removeFilter(self)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def load_results(out_dir: str | os.PathLike[str], indices: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Every run record present in the campaign folder, sorted by index."""
    out = Path(out_dir)
    if indices is None:
        spec = CampaignSpec.from_json((out / SPEC_FILE).read_text())
        indices = range(spec.n)
    records = []
    for i in indices:
        rec = _read_result(_result_path(out, i))
        if rec is not None:
            records.append(rec)
    return sorted(records, key=lambda r: r["index"])
