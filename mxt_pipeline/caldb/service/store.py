"""The CALDB service's store: files on disk, their index in SQLite, ``caldb.indx`` kept in step.

Layout of a served CALDB root::

    <root>/data/svom/<inst>/{bcf,cpf}/<codename>/<file>.fits    FITS calibration files
    <root>/data/svom/<inst>/upload/<codename>/<file>.yaml       upload class (YAML)
    <root>/data/svom/<inst>/caldb.indx (+ index/caldb.indx<YYYYMMDD>)
    <state>/caldb.sqlite                                        the authoritative index
    <state>/staging/                                            uploads being received

``<state>`` is ``<root>/.caldb_service`` unless a ``state_dir`` is given (``mxt caldb
serve`` keeps it outside the root, so that serving a CALDB kept in a source checkout,
such as the bundled ``fixtures_caldb/``, writes nothing into the checkout).

SQLite is the source of truth; after every change the node's ``caldb.indx`` is
regenerated from it (atomic write) so HEASoft tools keep working on the same tree.

An ingest is all or nothing.  Inside one ``BEGIN IMMEDIATE`` transaction the rows are
inserted (older datasets superseded: CAL_QUAL 5), the staged file is renamed into
place and the index rewritten; only then is the transaction committed.  Any failure
rolls the database back, removes the file and rewrites the index from the committed
state.  A crash in that window is repaired at the next start: the final path was
recorded in a ``pending`` table before the rename, and a pending file the database
does not know is deleted.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mxt_pipeline.caldb.cif import CifRow, read_cif
from mxt_pipeline.caldb.index import (
    fits_dataset_rows,
    index_path,
    is_fits_file,
    scan_calibration_files,
    today,
    upload_dataset_row,
    write_index,
)
from mxt_pipeline.caldb.select import CaldbQuery, select
from mxt_pipeline.caldb.service.nodes import NODES, StorageNode, get_node
from mxt_pipeline.caldb.service.upload import (
    MAX_YAML_BYTES,
    UPLOAD_CLASS,
    UPLOAD_TYPE,
    is_upload_name,
    parse_upload_name,
    parse_upload_yaml,
)
from mxt_pipeline.errors import MXTCaldbError, MXTCaldbNotFound, MXTError, MXTInputError
from mxt_pipeline.services.files import move_into_place

__all__ = [
    "CaldbStore",
    "UploadConflict",
    "UploadTooLarge",
    "InsufficientStorage",
    "STATE_DIR",
    "DEFAULT_MAX_UPLOAD",
    "MAX_YAML_BYTES",
    "check_upload_filename",
    "check_code_name",
    "is_disk_full",
]

log = logging.getLogger(__name__)

#: Folder of the service's own state under the CALDB root.
STATE_DIR = ".caldb_service"
#: Default largest accepted upload (bytes).
DEFAULT_MAX_UPLOAD = 256 * 1024 * 1024
#: Longest file name (CIF CAL_FILE is 40A).
MAX_NAME = 40
#: Largest accepted file id (SQLite integers are signed 64-bit).
MAX_FILE_ID = 2**63 - 1
#: File names the tree accepts: letters, digits, ``. _ + -``, not starting with a dot
#: (the CALDB file-name convention; nothing that a shell or a path would interpret).
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
#: CIF code names (CAL_CNAM, 20A): upper-case letters, digits and underscores,
#: starting with a letter.  They become a folder of the tree, so nothing else passes.
_CODE_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,19}$")
#: CIF classes that have a folder of their own.
_CLASSES = ("BCF", "CPF")
#: errno values that mean "no room to write" (the service answers 507).
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instrume TEXT NOT NULL,
    cal_dir TEXT NOT NULL,
    cal_file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    product_class TEXT NOT NULL,
    type TEXT NOT NULL,
    version INTEGER,
    valid_from TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    UNIQUE (cal_dir, cal_file)
);
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL REFERENCES files(id),
    telescop TEXT NOT NULL, instrume TEXT NOT NULL, detnam TEXT NOT NULL, filter TEXT NOT NULL,
    cal_dev TEXT NOT NULL, cal_clas TEXT NOT NULL, cal_dtyp TEXT NOT NULL, cal_cnam TEXT NOT NULL,
    cal_cbd TEXT NOT NULL, cal_xno INTEGER NOT NULL, cal_vsd TEXT NOT NULL, cal_vst TEXT NOT NULL,
    ref_time REAL NOT NULL, cal_qual INTEGER NOT NULL, cal_date TEXT NOT NULL, cal_desc TEXT NOT NULL,
    UNIQUE (file_id, cal_xno)
);
CREATE INDEX IF NOT EXISTS datasets_inst ON datasets (instrume, cal_cnam);
CREATE TABLE IF NOT EXISTS pending (path TEXT PRIMARY KEY, instrume TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_ROW_COLUMNS = (
    "telescop", "instrume", "detnam", "filter", "cal_dev", "cal_clas", "cal_dtyp", "cal_cnam",
    "cal_cbd", "cal_xno", "cal_vsd", "cal_vst", "ref_time", "cal_qual", "cal_date", "cal_desc",
)  # fmt: skip


class UploadConflict(MXTCaldbError):
    """The upload clashes with a file already stored (HTTP 409)."""


class UploadTooLarge(MXTInputError):
    """The upload exceeds the size limit (HTTP 413)."""


class InsufficientStorage(MXTCaldbError):
    """The service has no room left to store an upload (HTTP 507, not worth a retry)."""


def is_disk_full(exc: BaseException) -> bool:
    """True for an OSError meaning the disk (or a quota, or a file-size limit) is full."""
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def check_upload_filename(name: str) -> str:
    """Refuse names that are not plain, short CALDB file names (MXTInputError).

    Accepted: letters, digits, ``.``, ``_``, ``+`` and ``-``, not starting with a dot,
    at most 40 characters (the CIF CAL_FILE column).
    """
    if not isinstance(name, str) or not name:
        raise MXTInputError("empty file name")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise MXTInputError(f"file name {name!r} must be a bare name not starting with '.'")
    if any(not (33 <= ord(ch) < 127) for ch in name):
        raise MXTInputError(f"file name {name!r} must be printable ASCII without blanks")
    if len(name) > MAX_NAME:
        raise MXTInputError(f"file name {name!r} is {len(name)} characters; the index allows {MAX_NAME}")
    if not _FILE_NAME_RE.match(name):
        raise MXTInputError(f"file name {name!r} may hold only letters, digits and '._+-'")
    return name


def check_code_name(code: str, *, keyword: str = "CCNM0001", file: str | None = None) -> str:
    """Refuse a CIF code name that breaks the CALDB grammar (it becomes a folder name)."""
    if not isinstance(code, str) or not _CODE_NAME_RE.match(code):
        raise MXTInputError(
            f"code name {code!r} must be upper-case letters, digits and underscores, "
            "starting with a letter, at most 20 characters",
            file=file, keyword=keyword,
        )  # fmt: skip
    return code


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _identity(path: Path) -> tuple[int, int, int] | None:
    """Inode, size and modification time of a file (None when absent)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


@dataclass(frozen=True)
class _NodeView:
    """A node's rows at one database generation, with their records and code-name index."""

    generation: str
    rows: list[CifRow]
    records: dict[tuple[str, int], sqlite3.Row]
    by_code: dict[str, list[int]]
    #: The rows by the database values they were built from (see ``_row_key``): a
    #: rebuild after an ingest reuses them instead of parsing and checking every row.
    by_key: dict[tuple, CifRow]


class CaldbStore:
    """Files, SQLite index and ``caldb.indx`` of a served CALDB root.

    Parameters
    ----------
    root : path-like
        The CALDB root (created when missing).
    max_upload_bytes : int
        Largest accepted upload.
    telescop : str
        Mission of every node.
    state_dir : path-like, optional
        Folder of the SQLite index and the upload staging area (default
        ``<root>/.caldb_service``).

    Notes
    -----
    On first use of a root, each node's existing ``caldb.indx`` is imported (its
    qualities kept); without an index the node's files are scanned
    (:func:`~mxt_pipeline.caldb.index.scan_calibration_files`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
        telescop: str = "SVOM",
        state_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.root / STATE_DIR if state_dir is None else Path(state_dir).absolute()
        self.staging_dir = self.state_dir / "staging"
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.state_dir / "caldb.sqlite"
        self.max_upload_bytes = int(max_upload_bytes)
        self.telescop = telescop.upper()
        self._write_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._views: dict[str, _NodeView] = {}
        # One long-lived connection for the reads of requests (searches, downloads):
        # opening one costs more than the query itself.  Used under its lock, for a
        # few statements at a time, each run to completion (no read transaction is
        # left open to hold back WAL checkpoints).  Writes open their own.
        self._reader_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._reader_pid = 0
        with self._connect() as conn:
            conn.executescript(_SCHEMA)
        self._recover()
        self._bootstrap()

    def __repr__(self) -> str:
        return f"CaldbStore(root={str(self.root)!r})"

    def __enter__(self) -> CaldbStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the read connection (a later read opens a new one)."""
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # ------------------------------------------------------------------ database

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE.
        conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.row_factory = sqlite3.Row
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The shared read connection, held for the ``with`` block (short statements only)."""
        with self._reader_lock:
            if self._reader is None or self._reader_pid != os.getpid():  # not inherited across fork
                conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout=30000")
                conn.row_factory = sqlite3.Row
                self._reader, self._reader_pid = conn, os.getpid()
            yield self._reader

    def _insert_file(self, conn: sqlite3.Connection, rows: list[CifRow], info: dict[str, Any]) -> int:
        first = rows[0]
        cur = conn.execute(
            "INSERT INTO files (instrume, cal_dir, cal_file, sha256, size, product_class, type, version,"
            " valid_from, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                first.instrume, first.cal_dir, first.cal_file, info["sha256"], info["size"],
                info["product_class"], info["type"], info.get("version"),
                f"{first.cal_vsd}T{first.cal_vst}", info.get("ingested_at", _now()),
            ),
        )  # fmt: skip
        file_id = int(cur.lastrowid)
        for r in rows:
            values = [getattr(r, c) for c in _ROW_COLUMNS]
            values[_ROW_COLUMNS.index("cal_cbd")] = json.dumps(list(r.cal_cbd))
            conn.execute(
                f"INSERT INTO datasets (file_id, {', '.join(_ROW_COLUMNS)}) VALUES (?{', ?' * len(_ROW_COLUMNS)})",
                [file_id, *values],
            )
        return file_id

    @staticmethod
    def _row_from_db(rec: sqlite3.Row) -> CifRow:
        kwargs = {c: rec[c] for c in _ROW_COLUMNS}
        kwargs["cal_cbd"] = tuple(json.loads(rec["cal_cbd"]))
        return CifRow(cal_dir=rec["cal_dir"], cal_file=rec["cal_file"], **kwargs)

    @staticmethod
    def _row_key(rec: sqlite3.Row) -> tuple:
        """Every database value a :class:`CifRow` is built from (equal keys, equal rows)."""
        return (rec["cal_dir"], rec["cal_file"], *(rec[c] for c in _ROW_COLUMNS))

    def _rows_from_db(self, records: list[sqlite3.Row], instrume: str) -> tuple[list[CifRow], dict[tuple, CifRow]]:
        """Rows of ``records``, reusing those of the node's cached view that did not change.

        Building and checking a row costs ~70 us; after an ingest only the new and the
        superseded rows differ from the cached ones.
        """
        with self._cache_lock:
            view = self._views.get(instrume)
        known = view.by_key if view is not None else {}
        rows: list[CifRow] = []
        by_key: dict[tuple, CifRow] = {}
        for rec in records:
            key = self._row_key(rec)
            row = known.get(key)
            if row is None:
                row = self._row_from_db(rec)
            rows.append(row)
            by_key[key] = row
        return rows, by_key

    def _node_records(self, conn: sqlite3.Connection, instrume: str) -> list[sqlite3.Row]:
        return conn.execute(
            "SELECT d.*, f.cal_dir, f.cal_file, f.sha256, f.size, f.product_class, f.type, f.version,"
            " f.valid_from, f.ingested_at, f.id AS fid FROM datasets d JOIN files f ON d.file_id = f.id"
            " WHERE d.instrume = ? ORDER BY d.id",
            (instrume,),
        ).fetchall()

    def _regenerate(self, conn: sqlite3.Connection, node: StorageNode) -> Path | None:
        """Rewrite the node's caldb.indx from what ``conn`` sees (None when empty)."""
        rows, _ = self._rows_from_db(self._node_records(conn, node.instrument), node.instrument)
        if not rows and not index_path(self.root, self.telescop, node.instrument).exists():
            return None
        return write_index(rows, self.root, self.telescop, node.instrument)

    # ------------------------------------------------------------------ start-up

    def _recover(self) -> None:
        """Delete files left by an ingest that crashed before its commit."""
        with self._connect() as conn:
            pending = conn.execute("SELECT path, instrume FROM pending").fetchall()
            for rec in pending:
                rel = rec["path"]
                cal_dir, _, cal_file = rel.rpartition("/")
                known = conn.execute(
                    "SELECT 1 FROM files WHERE cal_dir = ? AND cal_file = ?", (cal_dir, cal_file)
                ).fetchone()
                if known is None:
                    with contextlib.suppress(FileNotFoundError):
                        (self.root / rel).unlink()
                    log.warning("removed %s left by an interrupted upload", rel)
                node = NODES.get(rec["instrume"])
                if node is not None:
                    self._regenerate(conn, node)
                conn.execute("DELETE FROM pending WHERE path = ?", (rel,))
        for stale in self.staging_dir.glob("*"):
            with contextlib.suppress(OSError):
                stale.unlink()

    def _bootstrap(self) -> None:
        """Import each node's existing index (or files) the first time a root is served."""
        for node in NODES.values():
            key = f"bootstrapped:{node.instrument}"
            with self._write_lock, self._connect() as conn:
                if conn.execute("SELECT 1 FROM meta WHERE key = ?", (key,)).fetchone():
                    continue
                idx = index_path(self.root, self.telescop, node.instrument)
                if idx.exists():
                    rows = read_cif(idx)
                    write = False
                else:
                    rows = scan_calibration_files(self.root, self.telescop, node.instrument)
                    write = bool(rows)
                by_file: dict[str, list[CifRow]] = {}
                for r in rows:
                    by_file.setdefault(r.relpath, []).append(r)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for rel, file_rows in by_file.items():
                        path = self.root / rel
                        if not path.is_file():
                            raise MXTCaldbError(f"the index lists {rel} but the file is missing", file=idx)
                        sha, size = _sha256(path)
                        upload = file_rows[0].cal_xno == -1
                        info = {
                            "sha256": sha,
                            "size": size,
                            "product_class": UPLOAD_CLASS if upload else file_rows[0].cal_clas.lower(),
                            "type": UPLOAD_TYPE if upload else file_rows[0].cal_clas.lower(),
                            "version": parse_upload_name(file_rows[0].cal_file).version if upload else None,
                        }
                        self._insert_file(conn, file_rows, info)
                    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, _now()))
                    if write:
                        self._regenerate(conn, node)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                if rows:
                    log.info("node %s: %d datasets imported", node.instrument, len(rows))

    # ------------------------------------------------------------------ reading

    def search(self, query: CaldbQuery) -> tuple[list[dict[str, Any]], str | None]:
        """Run a quzcif query on one node.

        Returns
        -------
        (list of dict, str or None)
            The matching datasets as JSON-ready records, and when there are none the
            reason (names instrument, code name, date and expression).
        """
        return self._search(query, self._view(get_node(query.instrume).instrument))

    def search_cached(self, query: CaldbQuery) -> tuple[list[dict[str, Any]], str | None] | None:
        """:meth:`search` when the node's rows in memory are current, else None.

        Costs one read of the database generation plus the selection among the rows
        of the code name (tens of microseconds), so the service runs it on its event
        loop; None (the rows must first be re-read, after an ingest) sends it to a
        worker thread.
        """
        instrume = get_node(query.instrume).instrument
        with self._read() as conn:
            gen = self._generation(conn)
        with self._cache_lock:
            view = self._views.get(instrume)
        if view is None or view.generation != gen:
            return None
        return self._search(query, view)

    def _search(self, query: CaldbQuery, view: _NodeView) -> tuple[list[dict[str, Any]], str | None]:
        code = (query.codename or "-").strip().upper()
        if code in ("-", "NONE"):
            subset = view.rows
        else:
            # Only the rows that can match this code name (rows coded NONE match any).
            picks = sorted(view.by_code.get(code, []) + view.by_code.get("NONE", []))
            subset = [view.rows[i] for i in picks]
        try:
            found = select(subset, query)
        except MXTCaldbNotFound as exc:
            if subset is view.rows:
                return [], exc.message
            try:  # the reason names the known code names: ask the whole node
                found = select(view.rows, query)
            except MXTCaldbNotFound as full:
                return [], full.message
        return [self._record(r, view.records[(r.relpath, r.cal_xno)]) for r in found], None

    def _generation(self, conn: sqlite3.Connection) -> str:
        rec = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return "0" if rec is None else str(rec[0])

    def _view(self, instrume: str) -> _NodeView:
        """The node's rows, kept in memory and rebuilt only after a change.

        Every ingest bumps the ``generation`` of the database in its transaction, so a
        search costs one indexed lookup plus the selection among the rows of its code
        name, whatever the size of the catalogue (and another process's upload is
        seen at once).
        """
        with self._read() as conn:
            gen = self._generation(conn)
            with self._cache_lock:
                cached = self._views.get(instrume)
                if cached is not None and cached.generation == gen:
                    return cached
            # Read together with the generation: the rows are those of ``gen`` (every
            # statement of this connection sees the last committed state).
            conn.execute("BEGIN")
            try:
                gen = self._generation(conn)
                records = self._node_records(conn, instrume)
            finally:
                conn.execute("COMMIT")
        rows, by_key = self._rows_from_db(records, instrume)
        by_code: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            by_code.setdefault(r.cal_cnam.strip().upper(), []).append(i)
        view = _NodeView(gen, rows, {(r.relpath, r.cal_xno): rec for r, rec in zip(rows, records)}, by_code, by_key)
        with self._cache_lock:
            self._views[instrume] = view
        return view

    @staticmethod
    def _record(row: CifRow, rec: sqlite3.Row) -> dict[str, Any]:
        return {
            "cif": row.as_record(),
            "file_id": rec["fid"],
            "sha256": rec["sha256"],
            "size": rec["size"],
            "product_class": rec["product_class"],
            "type": rec["type"],
            "version": rec["version"],
            "valid_from": rec["valid_from"],
            "ingested_at": rec["ingested_at"],
            "download": f"/api/v1/files/{rec['fid']}",
        }

    def inside_root(self, rel: str | os.PathLike[str]) -> Path:
        """``root/rel``, checked to stay inside the root once every symlink is resolved.

        A path whose real location is outside the root (``..`` parts, a symlink
        pointing out) is refused with :class:`~mxt_pipeline.errors.MXTInputError`:
        the service never reads or writes through a link that leaves its tree.
        """
        path = self.root / rel
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        if os.path.commonpath([real_root, real]) != real_root:
            raise MXTInputError(f"{rel} resolves outside the CALDB root; refused")
        return path

    def file_info(self, file_id: int) -> dict[str, Any]:
        """Path, name, checksum and size of a stored file (MXTCaldbNotFound when unknown).

        An id outside SQLite's 64-bit range, a file missing on disk (a broken symlink
        included) and a file whose real path leaves the root are all "not found":
        nothing outside the tree is ever served.
        """
        try:
            fid = int(file_id)
        except (TypeError, ValueError):
            raise MXTCaldbNotFound(f"no stored file with id {file_id!r}") from None
        if not 0 < fid <= MAX_FILE_ID:
            raise MXTCaldbNotFound(f"no stored file with id {fid}")
        with self._read() as conn:
            rec = conn.execute("SELECT * FROM files WHERE id = ?", (fid,)).fetchone()
        if rec is None:
            raise MXTCaldbNotFound(f"no stored file with id {fid}")
        rel = f"{rec['cal_dir']}/{rec['cal_file']}"
        path = self.root / rel
        if not path.is_file():  # absent, a broken symlink, a folder
            log.error("stored file %s is missing on disk", rel)
            raise MXTCaldbNotFound(f"stored file {rel} is missing on disk")
        try:
            path = self.inside_root(rel)
        except MXTInputError:
            log.error("stored file %s resolves outside the root: not served", rel)
            raise MXTCaldbNotFound(f"stored file {rel} is not available") from None
        return {"path": path, "cal_file": rec["cal_file"], "sha256": rec["sha256"], "size": rec["size"]}

    def node_summary(self) -> list[dict[str, Any]]:
        """Per node: number of files and datasets, index path."""
        out = []
        with self._connect() as conn:
            for node in NODES.values():
                n_files = conn.execute("SELECT COUNT(*) FROM files WHERE instrume = ?", (node.instrument,)).fetchone()[0]
                n_rows = conn.execute("SELECT COUNT(*) FROM datasets WHERE instrume = ?", (node.instrument,)).fetchone()[0]
                out.append({
                    "instrument": node.instrument, "description": node.description,
                    "files": n_files, "datasets": n_rows, "index": node.index_relpath,
                })  # fmt: skip
        return out

    # ------------------------------------------------------------------ writing

    @contextlib.contextmanager
    def staging_file(self) -> Iterator[tuple[Path, Any]]:
        """A temporary file in the staging folder (same filesystem as the tree); always removed."""
        fd, tmp = tempfile.mkstemp(prefix="upload.", suffix=".part", dir=self.staging_dir)
        path = Path(tmp)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield path, fh
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def ingest_path(self, node: str, filename: str, source: str | os.PathLike[str]) -> dict[str, Any]:
        """Ingest a local file (copied to staging first; ``source`` is not modified)."""
        with self.staging_file() as (tmp, fh), open(source, "rb") as src:
            h = hashlib.sha256()
            size = 0
            while block := src.read(1 << 20):
                size += len(block)
                if size > self.max_upload_bytes:
                    raise UploadTooLarge(f"{filename}: larger than {self.max_upload_bytes} bytes")
                h.update(block)
                fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())
            return self.ingest_staged(node, filename, tmp, h.hexdigest(), size)

    @contextlib.contextmanager
    def _plain_fits(self, staged: Path, filename: str, gzipped: bool) -> Iterator[Path]:
        """The staged file, or for gzip a decompressed copy in staging (size-capped).

        HEASARC CALDB trees hold ``.fits.gz`` files; they are stored as sent, and read
        through a plain copy.  The copy is refused past ``max_upload_bytes`` so that a
        small compressed upload cannot fill the disk.
        """
        if not gzipped:
            yield staged
            return
        import gzip
        import zlib

        with self.staging_file() as (tmp, fh):
            written = 0
            try:
                with gzip.open(staged, "rb") as src:
                    while block := src.read(1 << 20):
                        written += len(block)
                        if written > self.max_upload_bytes:
                            raise UploadTooLarge(
                                f"{filename}: decompresses to more than {self.max_upload_bytes} bytes"
                            )
                        fh.write(block)
            except (OSError, EOFError, zlib.error) as exc:
                if is_disk_full(exc):
                    raise
                raise MXTInputError(f"{filename}: corrupt gzip content ({type(exc).__name__})") from None
            fh.flush()
            yield tmp

    def _rows_for(self, node: StorageNode, filename: str, staged: Path) -> tuple[list[CifRow], dict[str, Any]]:
        """Rows and file metadata of a staged upload (MXTInputError/MXTFormatError when bad)."""
        cal_date = today()
        if is_upload_name(filename):
            parsed = parse_upload_name(filename)
            if parsed.instrument != node.instrument:
                raise MXTInputError(
                    f"upload file name {filename!r} is for {parsed.instrument}, sent to the {node.instrument} node"
                )
            if staged.stat().st_size > MAX_YAML_BYTES:
                raise UploadTooLarge(f"{filename}: an upload-class YAML file holds at most {MAX_YAML_BYTES} bytes")
            parse_upload_yaml(staged.read_bytes(), filename)
            row = upload_dataset_row(filename, telescop=self.telescop, cal_date=cal_date)
            return [row], {"product_class": UPLOAD_CLASS, "type": UPLOAD_TYPE, "version": parsed.version}
        # is_fits_file recognises gzip by the file's name; the staged copy has none.
        gzipped = _is_gzip(staged)
        if gzipped and not filename.lower().endswith(".gz"):
            raise MXTInputError(f"{filename}: gzip-compressed content needs a name ending in '.gz'")
        if not (gzipped or is_fits_file(staged)):
            raise MXTInputError(
                f"{filename}: neither a FITS file nor an upload-class YAML (.yaml) file"
            )
        try:
            with self._plain_fits(staged, filename, gzipped) as plain:
                rows = fits_dataset_rows(
                    plain, cal_dir="pending", cal_file=filename, telescop=self.telescop,
                    instrume=node.instrument, cal_date=cal_date,
                )  # fmt: skip
        except MXTError as exc:
            # Name the upload, not the staging file: the server's paths are not for clients.
            raise MXTInputError(str(exc).replace(str(staged), filename)) from None
        except (OSError, EOFError, ValueError) as exc:
            if is_disk_full(exc):
                raise
            raise MXTInputError(f"{filename}: unreadable FITS content ({type(exc).__name__})") from None
        if not rows:
            raise MXTInputError(f"{filename}: no calibrated HDU (no CCNM0001 keyword)")
        classes = {r.cal_clas for r in rows}
        if len(classes) > 1:
            raise MXTInputError(f"{filename}: HDUs of several classes {sorted(classes)}")
        if rows[0].cal_clas not in _CLASSES:
            raise MXTInputError(
                f"CCLS0001 is {rows[0].cal_clas!r}; uploads are one of {', '.join(_CLASSES)}",
                file=filename, keyword="CCLS0001",
            )  # fmt: skip
        for r in rows:
            # The code name becomes a folder of the tree: it must follow the grammar.
            check_code_name(r.cal_cnam, file=filename)
        if len({r.cal_cnam for r in rows}) > 1:
            raise MXTInputError(f"{filename}: HDUs of several code names {sorted({r.cal_cnam for r in rows})}")
        cal_dir = f"{node.data_dir}/{rows[0].cal_clas.lower()}/{rows[0].cal_cnam.lower()}"
        rows = [replace(r, cal_dir=cal_dir) for r in rows]
        clas = rows[0].cal_clas.lower()
        return rows, {"product_class": clas, "type": clas, "version": None}

    def ingest_staged(
        self,
        node: str,
        filename: str,
        staged: Path,
        sha256: str,
        size: int,
        declared_sha256: str | None = None,
    ) -> dict[str, Any]:
        """Index and store a file already received in the staging folder.

        Parameters
        ----------
        node : str
            Storage node (MXT, ECL, VT).
        filename : str
            Name to store it under (CAL_FILE).
        staged : Path
            The received bytes (moved into the tree on success).
        sha256, size : str, int
            Checksum and size of ``staged`` as received.
        declared_sha256 : str, optional
            Checksum the sender announced; a mismatch refuses the upload.

        Returns
        -------
        dict
            ``status`` (``created`` or ``unchanged``), ``file_id``, ``path``,
            ``sha256``, ``type``, ``rows``, ``superseded`` (paths set to CAL_QUAL 5).

        Raises
        ------
        MXTInputError, MXTFormatError
            Bad name, content or checksum (HTTP 400); nothing stored.
        UploadConflict
            Same path with other content, or a version not newer (HTTP 409).
        """
        nd = get_node(node)
        check_upload_filename(filename)
        if declared_sha256 is not None and declared_sha256.strip().lower() != sha256:
            raise MXTInputError(f"{filename}: checksum mismatch, the upload was damaged in transit")
        if size > self.max_upload_bytes:
            raise UploadTooLarge(f"{filename}: larger than {self.max_upload_bytes} bytes")
        rows, info = self._rows_for(nd, filename, staged)
        info.update(sha256=sha256, size=size, ingested_at=_now())
        rel = rows[0].relpath
        # Every part was checked against the grammar; the resolved path is checked too
        # (a symlinked folder inside the tree must not lead the write outside it).
        final = self.inside_root(rel)
        with self._write_lock, self._connect() as conn:

            def stored_already() -> dict[str, Any] | None:
                """The answer when the path is already indexed (UploadConflict for other bytes)."""
                existing = conn.execute(
                    "SELECT id, sha256 FROM files WHERE cal_dir = ? AND cal_file = ?", (rows[0].cal_dir, filename)
                ).fetchone()
                if existing is None:
                    return None
                if existing["sha256"] == sha256:
                    return {"status": "unchanged", "file_id": existing["id"], "path": rel, "sha256": sha256,
                            "type": info["type"], "rows": len(rows), "superseded": []}  # fmt: skip
                raise UploadConflict(f"{rel} is already stored with other content; upload a new version")

            if (answer := stored_already()) is not None:
                return answer
            if final.exists():
                raise UploadConflict(f"{rel} exists on disk but not in the index; refusing to overwrite")
            conn.execute("INSERT OR REPLACE INTO pending (path, instrume) VALUES (?, ?)", (rel, nd.instrument))
            moved = False
            created_dirs: list[Path] = []
            index_before = _identity(index_path(self.root, self.telescop, nd.instrument))
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Again inside the transaction: another process serving the same root
                # may have stored this path since the check above (the lock is only
                # this process's); answer as if it had been first, touching nothing.
                if (answer := stored_already()) is not None:
                    conn.execute("ROLLBACK")
                    return answer
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('generation', '1') ON CONFLICT(key) DO UPDATE"
                    " SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
                )
                superseded = self._supersede(conn, rows, info)
                file_id = self._insert_file(conn, rows, info)
                for parent in reversed(final.parents):
                    if not parent.exists():
                        parent.mkdir()
                        created_dirs.append(parent)
                os.chmod(staged, 0o644)  # mkstemp made it 0600; calibration files are public
                move_into_place(staged, final)
                moved = True
                self._regenerate(conn, nd)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                if moved:
                    with contextlib.suppress(FileNotFoundError):
                        final.unlink()
                for d in reversed(created_dirs):
                    with contextlib.suppress(OSError):
                        d.rmdir()
                # Index writes are atomic renames: if the index was replaced before the
                # failure (its identity changed), rewrite it from the rolled-back state.
                if _identity(index_path(self.root, self.telescop, nd.instrument)) != index_before:
                    with contextlib.suppress(Exception):
                        self._regenerate(conn, nd)
                raise
            finally:
                conn.execute("DELETE FROM pending WHERE path = ?", (rel,))
        log.info("stored %s (%s, %d dataset(s), %d superseded)", rel, info["type"], len(rows), len(superseded))
        return {"status": "created", "file_id": file_id, "path": rel, "sha256": sha256,
                "type": info["type"], "rows": len(rows), "superseded": superseded}  # fmt: skip

    def _supersede(self, conn: sqlite3.Connection, rows: list[CifRow], info: dict[str, Any]) -> list[str]:
        """Set CAL_QUAL 5 on the good datasets the new rows replace; return their paths.

        FITS: a good dataset with the same code name, DETNAM, FILTER, boundaries and
        validity start.  Upload class: the same code name and validity start with a
        lower version (a version not above every stored one is a conflict).
        """
        out: list[str] = []
        for r in rows:
            candidates = conn.execute(
                "SELECT d.id, d.cal_cbd, d.detnam, d.filter, f.cal_dir, f.cal_file, f.version, f.type"
                " FROM datasets d JOIN files f ON d.file_id = f.id"
                " WHERE d.instrume = ? AND d.cal_cnam = ? AND abs(d.ref_time - ?) < 1e-7",
                (r.instrume, r.cal_cnam, r.ref_time),
            ).fetchall()
            for c in candidates:
                if info["type"] == UPLOAD_TYPE:
                    if c["type"] != UPLOAD_TYPE:
                        continue
                    if c["version"] is not None and c["version"] >= info["version"]:
                        raise UploadConflict(
                            f"{r.cal_file}: version v{info['version']:02d} is not newer than the stored "
                            f"{c['cal_file']} (v{c['version']:02d}) with the same validity start"
                        )
                elif (
                    c["type"] == UPLOAD_TYPE
                    or tuple(json.loads(c["cal_cbd"])) != r.cal_cbd
                    or c["detnam"] != r.detnam
                    or c["filter"] != r.filter
                ):
                    continue
                cur = conn.execute("UPDATE datasets SET cal_qual = 5 WHERE id = ? AND cal_qual = 0", (c["id"],))
                if cur.rowcount:
                    out.append(f"{c['cal_dir']}/{c['cal_file']}")
        return sorted(set(out))
