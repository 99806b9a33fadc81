"""Scanning of the output root: one summary per published collection and per failed run.

The console serves an *output root*: a folder holding output folders of ``mxt run``
(``processing_status.json``, ``latest.json``, collections ``<pipeline>_<obs>_c..._vNNN``),
either the root itself or its sub-folders, one or two levels down.  A published
collection never changes (see :mod:`mxt_pipeline.pipelines.collection`), so its summary
is computed once and cached, keyed by the manifest's path and modification time; a
page view only lists folders again (``os.scandir``) and reads nothing new.

Every path the console serves goes through :func:`resolve_inside`, which resolves
symbolic links first and refuses anything that does not end up inside the root.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mxt_pipeline.errors import MXTInputError

__all__ = [
    "SourceRow",
    "RunSummary",
    "RootScanner",
    "resolve_inside",
    "read_sources",
    "OUTSIDE_ROOT",
    "NotServed",
]

log = logging.getLogger(__name__)

_COLLECTION_RE = re.compile(r"^(?P<stem>.+)_v(?P<counter>\d{3,})$")
_MANIFEST = "manifest.json"
_STATUS = "processing_status.json"
_REPORT = "run_report.json"
#: Depth of output folders below the root that are scanned (root itself = 0).
MAX_DEPTH = 2
OUTSIDE_ROOT = "not inside the served root"


class NotServed(MXTInputError):
    """A path or run the console does not serve: outside the root, hidden, or absent (HTTP 404)."""


def resolve_inside(root: Path, relative: str) -> Path:
    """The real path of ``relative`` under ``root``, refusing anything that leaves it.

    Parameters
    ----------
    root : Path
        The served root, already resolved.
    relative : str
        A path relative to the root, as it comes from a URL.

    Returns
    -------
    Path
        The resolved path (it exists).

    Raises
    ------
    NotServed
        When the path is absolute, holds a NUL byte or a hidden component
        (``.staging``, ``.lock``: internals of a run), does not exist, or resolves
        (through ``..`` or a symbolic link) outside ``root``.
    """
    if "\x00" in relative or relative.startswith(("/", "\\")):
        raise NotServed(f"path {relative!r} is {OUTSIDE_ROOT}")
    parts = [p for p in relative.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p.startswith(".") for p in parts):
        # '..' and hidden internals alike: neither is ever linked from a page.
        raise NotServed(f"path {relative!r} is {OUTSIDE_ROOT}")
    try:
        real = root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotServed(f"path {relative!r} does not exist under the root") from None
    if real != root and not real.is_relative_to(root):
        raise NotServed(f"path {relative!r} is {OUTSIDE_ROOT}")
    return real


@dataclass(frozen=True)
class SourceRow:
    """One detected source of a run: SRCLIST row of the MXT_SOP_SKY product."""

    src_id: int
    ra: float
    dec: float
    r90_arcsec: float
    det_ml: float
    rate: float | None = None


@dataclass
class RunSummary:
    """One line of the runs table: a published collection, or a run that published none."""

    key: str  # path of the collection (or of the output folder) relative to the root
    output_dir: str  # output folder relative to the root ('' for the root itself)
    obs_id: str
    object: str
    pipeline: str
    mode: str
    status: str
    started: str
    duration_s: float | None
    caldb_version: str
    pipeline_version: str
    collection: str | None
    counter: int | None
    sources: list[SourceRow] = field(default_factory=list)
    reason: str | None = None
    stopped_at: str | None = None

    @property
    def published(self) -> bool:
        return self.collection is not None

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in (
            "key", "output_dir", "obs_id", "object", "pipeline", "mode", "status", "started", "duration_s",
            "caldb_version", "pipeline_version", "collection", "counter", "reason", "stopped_at")}  # fmt: skip
        d["sources"] = [s.__dict__ for s in self.sources]
        return d


def read_sources(path: Path) -> list[SourceRow]:
    """Sources of an MXT_SOP_SKY file (SRCLIST HDU), strongest first; [] when unreadable.

    Read through the FITS I/O layer's astropy (no schema validation: the run page
    shows the validation state separately, and a summary must not fail on it).
    """
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            data = hdul["SRCLIST"].data
            if data is None:
                return []
            names = set(data.columns.names)
            rate = data["RATE"] if "RATE" in names else None
            rows = [
                SourceRow(int(data["SRC_ID"][i]), float(data["RA"][i]), float(data["DEC"][i]),
                          float(data["ERR_R90"][i]), float(data["DET_ML"][i]),
                          None if rate is None else float(rate[i]))
                for i in range(len(data))
            ]  # fmt: skip
    except (OSError, KeyError, ValueError, TypeError) as exc:
        log.warning("cannot read the source list %s: %s", path.name, type(exc).__name__)
        return []
    return sorted(rows, key=lambda s: -s.det_ml)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _duration(report: dict[str, Any] | None) -> float | None:
    if not report:
        return None
    total = (report.get("timing") or {}).get("total_s")
    return float(total) if isinstance(total, (int, float)) else None


def _reason_text(reason: Any) -> str | None:
    if not isinstance(reason, dict):
        return None
    loc = " ".join(f"{k}={reason[k]}" for k in ("file", "hdu", "column", "keyword") if reason.get(k) is not None)
    text = f"{reason.get('type', '')}: {reason.get('message', '')}".strip(": ")
    return f"{text} [{loc}]" if loc else text


def summarise_collection(path: Path, rel: str, output_rel: str) -> RunSummary | None:
    """Summary of one published collection (None when its manifest is unreadable)."""
    man = _read_json(path / _MANIFEST)
    if man is None:
        return None
    report = _read_json(path / _REPORT)
    target = man.get("target") or {}
    sky = next((f["path"] for f in man.get("files", []) if str(f.get("path", "")).startswith("mxt_sop_sky_")
                and str(f.get("path", "")).endswith(".fits")), None)  # fmt: skip
    sources = read_sources(path / sky) if sky else []
    m = _COLLECTION_RE.match(path.name)
    return RunSummary(
        key=rel,
        output_dir=output_rel,
        obs_id=str(target.get("obs_id", "")),
        object=str(target.get("object", "")),
        pipeline=str(man.get("pipeline", "")),
        mode=str(target.get("mode", "") or man.get("pipeline", "").upper()),
        status=str(man.get("status", "")),
        started=str((report or {}).get("started") or man.get("created", "")),
        duration_s=_duration(report),
        caldb_version=str(man.get("caldb_version", "")),
        pipeline_version=str(man.get("pipeline_version", "")),
        collection=path.name,
        counter=int(m["counter"]) if m else None,
        sources=sources,
        reason=_reason_text((report or {}).get("reason")),
        stopped_at=None,
    )


def _summarise_status(folder: Path, output_rel: str) -> RunSummary | None:
    """A line for the latest run of an output folder when it published nothing."""
    st = _read_json(folder / _STATUS)
    if st is None or st.get("collection") or st.get("already_done"):
        return None
    stopped = st.get("stopped_at")
    return RunSummary(
        key=output_rel,
        output_dir=output_rel,
        obs_id=str(st.get("obs_id", "")),
        object="",
        pipeline=str(st.get("pipeline", "")),
        mode=str(st.get("pipeline", "")).upper(),
        status=str(st.get("status", "")),
        started=str(st.get("started", "")),
        duration_s=None,
        caldb_version=str((st.get("versions") or {}).get("caldb", "") or ""),
        pipeline_version=str((st.get("versions") or {}).get("pipeline", "") or ""),
        collection=None,
        counter=None,
        reason=_reason_text(st.get("reason")),
        stopped_at=", ".join(f"{k}={v}" for k, v in stopped.items()) if isinstance(stopped, dict) else None,
    )


class RootScanner:
    """The runs under an output root, with a cache of collection summaries.

    Thread-safe: the web server calls :meth:`runs` from its worker threads.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        root_path = Path(root)
        if not root_path.is_dir():
            raise MXTInputError("the console root is not a folder", file=root_path)
        self.root = root_path.resolve()
        self._cache: dict[str, tuple[int, RunSummary | None]] = {}  # key -> (mtime_ns, summary)
        self._lock = threading.Lock()

    def _output_dirs(self) -> list[tuple[Path, list[os.DirEntry]]]:
        """Output folders under the root, each with its listing (one ``scandir`` per folder)."""
        found: list[tuple[Path, list[os.DirEntry]]] = []
        frontier = [(self.root, 0)]
        while frontier:
            folder, depth = frontier.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            names = {e.name for e in entries}
            subdirs = [e for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
            if _STATUS in names or "latest.json" in names or any(_COLLECTION_RE.match(e.name) for e in subdirs):
                found.append((folder, entries))
            elif depth < MAX_DEPTH:
                frontier.extend((Path(e.path), depth + 1) for e in subdirs)
        return sorted(found, key=lambda fe: fe[0])

    def output_dirs(self) -> list[Path]:
        """Output folders under the root (those holding a status, a latest.json or collections)."""
        return [folder for folder, _ in self._output_dirs()]

    def _rel(self, path: Path) -> str:
        return "" if path == self.root else path.relative_to(self.root).as_posix()

    def _cached(self, key: str, stamp: int, make) -> RunSummary | None:
        with self._lock:
            hit = self._cache.get(key)
        if hit is None or hit[0] != stamp:
            hit = (stamp, make())
            with self._lock:
                self._cache[key] = hit
        return hit[1]

    def runs(self) -> list[RunSummary]:
        """Every run under the root: published collections and unpublished latest runs.

        Summaries are cached by file modification time (nanoseconds): a collection is
        read once; an output folder's status is read again only when it changes.
        """
        out: list[RunSummary] = []
        seen: set[str] = set()
        for folder, entries in self._output_dirs():
            output_rel = self._rel(folder)
            for e in entries:
                if e.name.startswith(".") or not _COLLECTION_RE.match(e.name) or not e.is_dir(follow_symlinks=False):
                    continue
                try:
                    mtime = os.stat(os.path.join(e.path, _MANIFEST)).st_mtime_ns
                except OSError:
                    continue  # not published (no manifest)
                rel = f"{output_rel}/{e.name}" if output_rel else e.name
                seen.add(rel)
                summary = self._cached(rel, mtime, lambda e=e, rel=rel, o=output_rel: summarise_collection(Path(e.path), rel, o))
                if summary is not None:
                    out.append(summary)
            status = next((x for x in entries if x.name == _STATUS), None)
            if status is not None:
                try:
                    mtime = status.stat().st_mtime_ns
                except OSError:
                    continue
                skey = f"status:{output_rel}"
                seen.add(skey)
                failed = self._cached(skey, mtime, lambda folder=folder, output_rel=output_rel: _summarise_status(folder, output_rel))
                if failed is not None:
                    out.append(failed)
        with self._lock:
            for k in [k for k in self._cache if k not in seen]:
                del self._cache[k]
        return out

    def run(self, key: str) -> RunSummary | None:
        """The run whose key (relative path) is ``key``, or None."""
        return next((r for r in self.runs() if r.key == key), None)
