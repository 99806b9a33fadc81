"""Versioned output collections: staging, resumable journal, atomic publication, manifest.

A run does not write into its final folder.  Layout of an output folder::

    OUT/
      processing_status.json     status of the latest run (see status.py)
      latest.json                {pipeline: newest collection of that pipeline}
      fast/                      fast products of XBAND-CP, replaced as they come
      .lock                      serialises publication between concurrent runs
      .staging/<run key>/        products of a run in progress (or interrupted)
          journal.json           bricks completed so far, with their output checksums
          .owner                 locked by the running process (flock)
      xband-gp_<OBS_ID>_c<CALDB version>_p<pipeline version>_v001/
          manifest.json          every file with its SHA-256, inputs, CALDB files, versions
          run_report.json/.md/.html, processing_status.json, run.log, products...

Guarantees:

* **never overwrite**: a collection is published by one ``rename`` of the staging
  folder to a name that does not exist yet (checked under ``.lock``); the counter
  ``vNNN`` grows with every collection of the pipeline in the folder;
* **no half-written product**: products are written atomically into staging; a run
  killed half way leaves only its staging folder, never a partial collection;
* **resumable**: the journal lists the bricks completed in staging with the checksums
  of their outputs; a rerun with the same run key verifies them, deletes anything
  else (temporary files of a killed write), and runs only the remaining bricks;
* **idempotent**: the *run key* is a hash of the pipeline and its version, the target,
  the checksums of every input and CALDB file and every effective parameter; a
  published SUCCESS or NO_DATA collection with the same key is recognised and nothing
  is run (unless forced).  A PARTIAL collection is not "done": a rerun (e.g. once the
  missing pass has arrived) makes a new collection.
* **one run per key at a time**: the staging folder's ``.owner`` lock is held while a
  run works in it; a second run with the same key ends BUSY.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mxt_pipeline.errors import MXTError
from mxt_pipeline.pipelines.brick import BrickResult
from mxt_pipeline.pipelines.ports import FileRecord, file_record, json_bytes, write_json
from mxt_pipeline.services.files import sha256_file

__all__ = [
    "Busy",
    "CollectionInfo",
    "CollectionStore",
    "StagingArea",
    "compute_run_key",
    "collection_name",
    "MANIFEST",
    "JOURNAL",
]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
JOURNAL = "journal.json"
LATEST = "latest.json"
_OWNER = ".owner"
_NAME_RE = re.compile(r"^(?P<stem>.+)_v(?P<counter>\d{3,})$")


class Busy(MXTError):
    """Another process is running the same inputs in the same output folder."""


def compute_run_key(
    pipeline: str,
    pipeline_version: str,
    target: Mapping[str, Any],
    inputs: Iterable[FileRecord],
    caldb: Iterable[Mapping[str, Any]],
    parameters: Mapping[str, Any],
) -> str:
    """The identity of a run's inputs and versions (hex SHA-256).

    File paths do not enter the key, only roles and checksums: the same data moved to
    another folder is the same run.
    """
    doc = {
        "pipeline": pipeline,
        "pipeline_version": pipeline_version,
        "target": dict(target),
        "inputs": sorted([r.port, r.sha256] for r in inputs),
        "caldb": sorted([c["code"], c["sha256"]] for c in caldb),
        "parameters": parameters,
    }
    return hashlib.sha256(json_bytes(doc)).hexdigest()


def collection_name(pipeline: str, obs_id: str, caldb_version: str, pipeline_version: str, counter: int) -> str:
    """``<pipeline>_<obs_id>_c<caldb version>_p<pipeline version>_v<NNN>``."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", obs_id)
    return f"{pipeline}_{safe}_c{caldb_version}_p{pipeline_version}_v{counter:03d}"


@dataclass(frozen=True)
class CollectionInfo:
    """A published collection, from its manifest."""

    path: Path
    name: str
    pipeline: str
    counter: int
    run_key: str
    status: str
    manifest: dict[str, Any]


def _fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename) to disk; ignored where unsupported."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class StagingArea:
    """The staging folder of one run key, owned by one process at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._owner_fd: int | None = None

    def acquire(self) -> None:
        """Take ownership (non-blocking); raise :class:`Busy` when another process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / _OWNER, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy("another run with the same inputs is in progress", file=self.path) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._owner_fd = fd

    def release(self) -> None:
        if self._owner_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._owner_fd, fcntl.LOCK_UN)
                os.close(self._owner_fd)
            self._owner_fd = None

    # ---- journal -------------------------------------------------------------------------
    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL

    def read_journal(self, run_key: str) -> dict[str, BrickResult]:
        """Completed bricks whose outputs are intact; everything else in staging is removed.

        A journal of another run key (impossible unless tampered with) is ignored and
        the folder emptied.
        """
        kept: dict[str, BrickResult] = {}
        try:
            doc = json.loads(self.journal_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            doc = {}
        if doc.get("run_key") == run_key:
            for entry in doc.get("bricks", []):
                res = BrickResult.from_dict(entry)
                if res.ok and all(self._intact(r) for r in res.outputs):
                    kept[res.name] = res
                else:
                    break  # a later brick may depend on this one: stop at the first gap
        keep_files = {r.path for res in kept.values() for r in res.outputs}
        self._remove_except(keep_files)
        self._write_journal(run_key, list(kept.values()))
        return kept

    def _intact(self, rec: FileRecord) -> bool:
        p = self.path / rec.path
        return p.is_file() and not p.is_symlink() and p.stat().st_size == rec.size and sha256_file(p) == rec.sha256

    def _remove_except(self, keep: set[str]) -> None:
        for p in sorted(self.path.rglob("*"), reverse=True):
            rel = str(p.relative_to(self.path))
            if rel in keep or rel in (JOURNAL, _OWNER):
                continue
            if p.is_dir() and not p.is_symlink():
                with contextlib.suppress(OSError):
                    p.rmdir()  # only empty folders; folders of kept files stay
            else:
                p.unlink()

    def _write_journal(self, run_key: str, results: list[BrickResult]) -> None:
        write_json(self.journal_path, {"run_key": run_key, "bricks": [r.to_dict() for r in results]})

    def record(self, run_key: str, results: list[BrickResult]) -> None:
        """Rewrite the journal with the completed bricks so far (atomic)."""
        self._write_journal(run_key, [r for r in results if r.ok])


class CollectionStore:
    """The output folder of a pipeline: its collections, staging areas and lock."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock of the folder (blocking): counter choice and publication."""
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # ---- published collections ---------------------------------------------------------
    def collections(self, pipeline: str | None = None) -> list[CollectionInfo]:
        """Published collections (folders holding a manifest), oldest counter first."""
        out = []
        for d in self.root.iterdir():
            m = _NAME_RE.match(d.name)
            if not d.is_dir() or m is None or not (d / MANIFEST).is_file():
                continue
            try:
                man = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
            except ValueError:
                log.warning("unreadable manifest in %s: ignored", d)
                continue
            if pipeline is not None and man.get("pipeline") != pipeline:
                continue
            out.append(CollectionInfo(d, d.name, man.get("pipeline", ""), int(m["counter"]),
                                      man.get("run_key", ""), man.get("status", ""), man))  # fmt: skip
        return sorted(out, key=lambda c: (c.pipeline, c.counter))

    def find_done(self, run_key: str, done_statuses: Iterable[str] = ("SUCCESS", "NO_DATA")) -> CollectionInfo | None:
        """The newest published collection of ``run_key`` with a final status, if any."""
        wanted = set(done_statuses)
        hits = [c for c in self.collections() if c.run_key == run_key and c.status in wanted]
        return hits[-1] if hits else None

    def next_counter(self, pipeline: str) -> int:
        """1 + the highest counter of the pipeline's collections (and of any folder name)."""
        used = [c.counter for c in self.collections(pipeline)]
        for d in self.root.glob(f"{pipeline}_*"):
            m = _NAME_RE.match(d.name)
            if m:
                used.append(int(m["counter"]))
        return max(used, default=0) + 1

    def latest(self) -> dict[str, str]:
        try:
            return json.loads((self.root / LATEST).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}

    # ---- staging -------------------------------------------------------------------------
    def staging(self, run_key: str) -> StagingArea:
        """The (acquired) staging area of ``run_key``; :class:`Busy` when owned by another run."""
        area = StagingArea(self.root / ".staging" / run_key[:24])
        area.acquire()
        return area

    def clean_stale_staging(self, max_age_s: float = 7 * 86400.0) -> list[Path]:
        """Remove staging folders of other run keys left unowned for ``max_age_s``."""
        removed = []
        base = self.root / ".staging"
        if not base.is_dir():
            return removed
        now = time.time()
        for d in base.iterdir():
            if not d.is_dir() or now - d.stat().st_mtime < max_age_s:
                continue
            area = StagingArea(d)
            try:
                area.acquire()
            except Busy:
                continue
            area.release()
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
        return removed

    def publish(self, area: StagingArea, stem_fields: Mapping[str, str], finalize) -> Path:
        """Publish a staging area as a new collection (under the folder lock).

        Parameters
        ----------
        area : StagingArea
        stem_fields : mapping
            ``pipeline``, ``obs_id``, ``caldb_version``, ``pipeline_version``.
        finalize : callable
            ``finalize(name, counter)`` writes the last files into staging (report,
            manifest) once the collection's name is known; called under the lock.

        Returns
        -------
        Path
            The published collection.
        """
        with self.lock():
            counter = self.next_counter(stem_fields["pipeline"])
            name = collection_name(
                stem_fields["pipeline"], stem_fields["obs_id"], stem_fields["caldb_version"],
                stem_fields["pipeline_version"], counter,
            )  # fmt: skip
            final = self.root / name
            if final.exists():  # cannot happen under the lock; never overwrite anyway
                raise FileExistsError(final)
            finalize(name, counter)
            for leftover in (area.journal_path, area.path / _OWNER):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            os.rename(area.path, final)
            _fsync_dir(self.root)
            latest = self.latest()
            latest[stem_fields["pipeline"]] = name
            write_json(self.root / LATEST, latest)
        area.release()
        return final


def write_manifest(
    collection_dir: Path,
    name: str,
    counter: int,
    *,
    header: Mapping[str, Any],
    products: Iterable[FileRecord],
    exclude: Iterable[str] = (),
) -> Path:
    """Write ``manifest.json``: the header fields and every file of the collection.

    Files recorded by bricks keep their brick/port; other files found in the folder
    (reports, status, log) are hashed and listed with role ``report``.
    """
    by_path = {r.path: r for r in products}
    skip = {MANIFEST, JOURNAL, _OWNER, *exclude}
    files = []
    for p in sorted(collection_dir.rglob("*")):
        rel = str(p.relative_to(collection_dir))
        if not p.is_file() or rel in skip:
            continue
        rec = by_path.get(rel)
        if rec is not None and (rec.sha256 != sha256_file(p)):
            raise MXTError(f"product changed after it was written: {rel}", file=p)
        files.append(rec.to_dict() if rec is not None else file_record("", p, relative_to=collection_dir, role="report").to_dict())
    doc = {"collection": name, "counter": counter, **header, "files": files}
    return write_json(collection_dir / MANIFEST, doc)


def verify_collection(collection_dir: str | os.PathLike[str]) -> list[str]:
    """Problems of a published collection: files missing, altered or unlisted (empty: intact)."""
    root = Path(collection_dir)
    man = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    problems = []
    listed = set()
    for f in man.get("files", []):
        p = root / f["path"]
        listed.add(f["path"])
        if not p.is_file():
            problems.append(f"missing: {f['path']}")
        elif sha256_file(p) != f["sha256"]:
            problems.append(f"altered: {f['path']}")
    for p in root.rglob("*"):
        rel = str(p.relative_to(root))
        if p.is_file() and rel != MANIFEST and rel not in listed:
            problems.append(f"not in the manifest: {rel}")
    return problems
