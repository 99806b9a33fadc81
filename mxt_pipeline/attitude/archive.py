"""The archive of reconstructed attitude files behind the attitude service.

The archive is a folder of MXT_ATT files (as :func:`mxt_pipeline.io.products.write_attitude`
writes them and every dataset carries them), in any sub-folder layout.  A SQLite index
(one row per file: name relative to the root, TSTART, TSTOP, number of rows, SHA-256,
size, modification time, and the problem that makes a file unusable, if any) tells which
files cover a time range.  :meth:`AttitudeArchive.refresh` brings the index up to date:
a new or changed file is read and checked (format, strictly increasing TIME, finite unit
quaternions), a removed one is dropped; unchanged files (same size and modification
time) are not read again.

:meth:`AttitudeArchive.select` answers a time range with the rows inside it plus one
sample either side (what interpolation at the range's ends needs), merged over the
files that hold them.  A range that the archive does not reach at all is
:class:`NoCoverage`; a range touching a file with a bad row is :class:`BadArchiveFile`,
naming the file and the row.  Gaps between samples are *not* filled: the rows are
served as they are and the pipeline's screening turns a gap longer than
``max_attitude_gap_s`` into an ATTITUDE gap.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from mxt_pipeline.datamodel.attitude import Attitude, bad_quaternion
from mxt_pipeline.errors import MXTError, MXTInputError, MXTServiceError
from mxt_pipeline.io.products import read_attitude

__all__ = ["AttitudeArchive", "AttitudeSelection", "rows_for_range", "NoCoverage", "BadArchiveFile", "NotReady", "MAX_SPAN_S"]

log = logging.getLogger(__name__)

#: Longest time range one request may ask for (s): ten days of attitude.
MAX_SPAN_S = 10 * 86400.0
#: Files kept decoded in memory (most requests ask for the same recent files).
CACHE_FILES = 64
#: The columns of an MXT_ATT table, in the product's order.
COLUMNS = ("TIME", "QPARAM", "RA", "DEC", "ROLL")


class NoCoverage(MXTServiceError):
    """The archive holds no attitude for the requested range (HTTP 404)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)


class BadArchiveFile(MXTServiceError):
    """A file of the archive that the range needs is unusable (HTTP 422)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=422)


class NotReady(MXTServiceError):
    """The index is not built yet (HTTP 503 with ``Retry-After``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=503)


@dataclass(frozen=True)
class AttitudeSelection:
    """The answer to one time range.

    Attributes
    ----------
    attitude : Attitude
        The rows of ``[tstart, tstop]`` plus one sample either side, TIME increasing.
    sources : tuple of str
        Archive files the rows come from (names relative to the root), sorted.
    tstart, tstop : float
        The range asked for.
    epoch : int
        Modification time of the newest source file (s since 1970): the answer's DATE,
        so that the same archive answers a range with the same bytes.
    """

    attitude: Attitude
    sources: tuple[str, ...]
    tstart: float
    tstop: float
    epoch: int = 0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    name TEXT PRIMARY KEY,
    tstart REAL,
    tstop REAL,
    nrows INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    problem TEXT
);
CREATE INDEX IF NOT EXISTS files_span ON files (tstart, tstop);
"""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _header_span(path: Path) -> tuple[float | None, float | None]:
    """TSTART/TSTOP of a file that could not be read as attitude (to know what it spoils)."""
    try:
        hdr = fits.getheader(path, 0)
        a, b = hdr.get("TSTART"), hdr.get("TSTOP")
        return (float(a), float(b)) if a is not None and b is not None else (None, None)
    except (OSError, ValueError, TypeError):
        return None, None


def rows_for_range(time: np.ndarray, tstart: float, tstop: float) -> tuple[int, int]:
    """First and last index (inclusive) of the samples serving ``[tstart, tstop]``.

    Every sample with TIME in the range, plus the last one before ``tstart`` and the first
    one after ``tstop`` when they exist (a sample exactly at an end needs no neighbour).

    Parameters
    ----------
    time : ndarray
        Strictly increasing sample times (at least one).
    """
    i0 = max(int(np.searchsorted(time, tstart, "right")) - 1, 0)
    i1 = min(int(np.searchsorted(time, tstop, "left")), time.size - 1)
    return i0, i1


def _row_problem(path: Path) -> str | None:
    """The first bad row of an ATT file's table (quaternion not a finite unit one, TIME
    not finite or not increasing), named by FITS row number; None when the rows are fine
    or the table cannot be read raw (the product reader then says why)."""
    try:
        with fits.open(path, memmap=False) as hdul:
            data = hdul["ATTITUDE"].data
            q = np.array(data["QPARAM"], dtype=float).reshape(-1, 4)
            t = np.array(data["TIME"], dtype=float)
    except (OSError, KeyError, ValueError, TypeError, IndexError):
        return None
    found = bad_quaternion(q)
    if found is not None:
        return f"[ATTITUDE] column QPARAM: row {found[0]}: {found[1]}"
    bad_t = np.flatnonzero(~np.isfinite(t))
    if bad_t.size:
        return f"[ATTITUDE] column TIME: row {bad_t[0] + 1}: TIME {t[bad_t[0]]!r} is not finite"
    back = np.flatnonzero(np.diff(t) <= 0)
    if back.size:
        return f"[ATTITUDE] column TIME: row {back[0] + 2}: TIME does not increase"
    return None


class AttitudeArchive:
    """ATT files under ``root`` with their SQLite index.

    Parameters
    ----------
    root : path-like
        Folder of MXT_ATT files (searched recursively; hidden entries are skipped).
    state_dir : path-like, optional
        Where the index ``attitude_index.sqlite`` lives (default ``<root>/.attitude_service``;
        ``mxt attitude serve`` puts it outside the root).
    build : bool
        Index the files now (else :attr:`ready` stays False until :meth:`refresh`).

    Raises
    ------
    MXTInputError
        ``root`` is not a folder.
    """

    INDEX_NAME = "attitude_index.sqlite"

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        state_dir: str | os.PathLike[str] | None = None,
        build: bool = True,
    ) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise MXTInputError("attitude archive folder not found", file=self.root)
        self.state_dir = Path(state_dir) if state_dir is not None else self.root / ".attitude_service"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.index_path = self.state_dir / self.INDEX_NAME
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.index_path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        self._cache: OrderedDict[tuple[str, str], Attitude] = OrderedDict()
        self._ready = threading.Event()
        self.generation = 0
        if build:
            self.refresh()

    def __repr__(self) -> str:
        return f"AttitudeArchive(root={str(self.root)!r}, ready={self.ready})"

    @property
    def ready(self) -> bool:
        """Whether the index has been built once."""
        return self._ready.is_set()

    def close(self) -> None:
        """Close the index."""
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ index

    def _files_on_disk(self) -> Iterator[Path]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith(".") and name.lower().endswith((".fits", ".fits.gz", ".fit")):
                    yield Path(dirpath) / name

    def refresh(self) -> dict[str, int]:
        """Bring the index up to date with the folder; return the counts of the changes.

        Returns
        -------
        dict
            ``added``, ``updated``, ``removed``, ``unchanged`` and ``refused`` (files
            recorded with a problem).
        """
        counts = {"added": 0, "updated": 0, "removed": 0, "unchanged": 0, "refused": 0}
        with self._lock:
            known = {r[0]: (r[1], r[2]) for r in self._db.execute("SELECT name, size, mtime_ns FROM files")}
            seen: set[str] = set()
            for path in self._files_on_disk():
                name = path.relative_to(self.root).as_posix()
                try:
                    st = path.stat()
                except OSError:
                    continue  # removed while scanning
                seen.add(name)
                if known.get(name) == (st.st_size, st.st_mtime_ns):
                    counts["unchanged"] += 1
                    continue
                row = self._inspect(path, name, st)
                self._db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
                counts["updated" if name in known else "added"] += 1
                counts["refused"] += row[-1] is not None
            for name in set(known) - seen:
                self._db.execute("DELETE FROM files WHERE name = ?", (name,))
                counts["removed"] += 1
            if counts["added"] or counts["updated"] or counts["removed"]:
                self.generation += 1
                self._cache.clear()
            self._ready.set()
        if counts["added"] or counts["updated"] or counts["removed"]:
            log.info("attitude index: %s", ", ".join(f"{v} {k}" for k, v in counts.items() if v))
        return counts

    def _inspect(self, path: Path, name: str, st: os.stat_result) -> tuple:
        sha = _sha256(path)
        problem = _row_problem(path)
        if problem is None:
            try:
                att = read_attitude(path)
            except MXTError as exc:
                where = " ".join(x for x in (f"[{exc.hdu}]" if exc.hdu is not None else "",
                                             f"column {exc.column}" if exc.column else "") if x)  # fmt: skip
                problem = f"{where + ': ' if where else ''}{exc.message}"
                violations = [str(v) for v in getattr(exc, "violations", ())]
                if violations:
                    problem += f" (first: {violations[0]})"
                problem = problem.replace(str(path), name)
            else:
                t = np.asarray(att["TIME"], dtype=float)
                return (name, float(t[0]), float(t[-1]), int(t.size), sha, st.st_size, st.st_mtime_ns, None)
        # The file as named in the archive, never by its path on the service's disk.
        problem = f"{name}{'' if problem.startswith('[') else ': '}{problem}"
        log.warning("attitude file refused: %s", problem)
        tstart, tstop = _header_span(path)
        return (name, tstart, tstop, 0, sha, st.st_size, st.st_mtime_ns, problem)

    def files(self) -> list[dict]:
        """The index rows, by name (``problem`` is None for a usable file)."""
        with self._lock:
            cur = self._db.execute(
                "SELECT name, tstart, tstop, nrows, sha256, size, problem FROM files ORDER BY name"
            )
            keys = ("file", "tstart", "tstop", "nrows", "sha256", "size", "problem")
            return [dict(zip(keys, r)) for r in cur.fetchall()]

    # ------------------------------------------------------------------ queries

    def _load(self, name: str, sha: str) -> Attitude:
        key = (name, sha)
        with self._lock:
            att = self._cache.get(key)
            if att is not None:
                self._cache.move_to_end(key)
                return att
        att = read_attitude(self.root / name)
        with self._lock:
            self._cache[key] = att
            while len(self._cache) > CACHE_FILES:
                self._cache.popitem(last=False)
        return att

    def select(self, tstart: float, tstop: float) -> AttitudeSelection:
        """The attitude rows of ``[tstart, tstop]`` plus one sample either side.

        Raises
        ------
        NotReady
            The index is not built yet.
        MXTInputError
            Times not finite, ``tstop < tstart``, or a range longer than :data:`MAX_SPAN_S`.
        NoCoverage
            No sample inside the range and none on both sides of it.
        BadArchiveFile
            A file holding rows the range needs is unusable (its problem names the row).
        """
        if not self.ready:
            raise NotReady("the attitude index is being built")
        if not (np.isfinite(tstart) and np.isfinite(tstop)):
            raise MXTInputError(f"time range [{tstart}, {tstop}] is not finite", keyword="tstart/tstop")
        if tstop < tstart:
            raise MXTInputError(f"tstop {tstop!r} is before tstart {tstart!r}", keyword="tstop")
        if tstop - tstart > MAX_SPAN_S:
            raise MXTInputError(f"time range of {tstop - tstart:g} s is longer than {MAX_SPAN_S:g} s",
                                keyword="tstart/tstop")  # fmt: skip
        with self._lock:
            # Files overlapping the range, and the nearest file on each side of it (the
            # sample before tstart and the one after tstop may lie in another file).
            inside = self._db.execute(
                "SELECT name, sha256, problem, mtime_ns, tstart, tstop FROM files WHERE tstart <= ? AND tstop >= ?",
                (tstop, tstart),
            ).fetchall()
            # Only when no overlapping file already holds a sample at or before tstart
            # (at or after tstop) is the neighbouring file needed.
            before = [] if any(r[4] <= tstart for r in inside) else self._db.execute(
                "SELECT name, sha256, problem, mtime_ns, tstart, tstop FROM files WHERE tstop < ? "
                "ORDER BY tstop DESC LIMIT 1", (tstart,)
            ).fetchall()  # fmt: skip
            after = [] if any(r[5] >= tstop for r in inside) else self._db.execute(
                "SELECT name, sha256, problem, mtime_ns, tstart, tstop FROM files WHERE tstart > ? "
                "ORDER BY tstart ASC LIMIT 1", (tstop,)
            ).fetchall()  # fmt: skip
        if not inside and not (before and after):
            raise NoCoverage(f"no attitude covers [{tstart:.6f}, {tstop:.6f}]")
        chosen = sorted(set(inside) | set(before) | set(after))
        bad = [r[2] for r in chosen if r[2] is not None]
        if bad:
            raise BadArchiveFile(f"the attitude of [{tstart:.6f}, {tstop:.6f}] needs an unusable file: {bad[0]}")
        parts = [(r[0], self._load(r[0], r[1])) for r in chosen]
        time_ = np.concatenate([np.asarray(a["TIME"], dtype=float) for _, a in parts])
        origin = np.concatenate([np.full(len(a), i) for i, (_, a) in enumerate(parts)])
        # Sorted by time; where two files hold the same time, the first file by name wins.
        order = np.lexsort((origin, time_))
        time_s = time_[order]
        keep = np.r_[True, np.diff(time_s) > 0]
        order = order[keep]
        time_s = time_s[keep]
        i0, i1 = rows_for_range(time_s, tstart, tstop)
        rows = order[i0 : i1 + 1]
        columns = {}
        for col in COLUMNS:
            data = np.concatenate([np.asarray(a[col]) for _, a in parts])
            columns[col] = data[rows]
        used_idx = np.unique(origin[rows])
        used = sorted(parts[i][0] for i in used_idx)
        epoch = max(chosen[i][3] for i in used_idx) // 1_000_000_000
        obs_ids = {parts[i][1].meta.get("OBS_ID") for i in used_idx}
        # The observation of the rows when they all come from one; else MULTIPLE.
        obs_id = obs_ids.pop() if len(obs_ids) == 1 and None not in obs_ids else "MULTIPLE"
        att = Attitude(Table(columns), meta={"OBS_ID": obs_id})
        return AttitudeSelection(att, tuple(used), float(tstart), float(tstop), int(epoch))


class Slots:
    """At most ``n`` requests at once; a request that finds none free is refused (503)."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError("at least one slot")
        self._sem = threading.BoundedSemaphore(n)

    @contextlib.contextmanager
    def take(self) -> Iterator[bool]:
        """Yield True with a slot held, False when every slot is taken."""
        got = self._sem.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                self._sem.release()

    def hold(self) -> None:
        """Take a slot until :meth:`release` (tests: an overloaded service)."""
        self._sem.acquire()

    def release(self) -> None:
        self._sem.release()


def wait_ready(archive: AttitudeArchive, timeout: float) -> bool:
    """Wait until the archive's index is built (True) or ``timeout`` s pass (False)."""
    deadline = time.monotonic() + timeout
    while not archive.ready:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
