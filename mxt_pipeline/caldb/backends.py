"""Where :class:`~mxt_pipeline.caldb.CaDBIO` finds calibration files.

* :class:`LocalBackend`: a CALDB directory on disk (``$CALDB``, else the bundled
  ``fixtures_caldb/``).  The index of an instrument is found through
  ``software/tools/caldb.config`` when it has a line for it (its ``CALDB`` device
  mapped to the root), else at ``data/<mission>/<inst>/caldb.indx``.
* :class:`RemoteBackend`: the CALDB service (``MXT_CALDB_URL`` or an explicit URL),
  through :class:`~mxt_pipeline.services.RetryingClient` (token, retries, safe
  downloads).

Both answer a :class:`~mxt_pipeline.caldb.select.CaldbQuery` with
:class:`CaldbEntry` objects and fetch an entry's file into a folder.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mxt_pipeline.caldb.cif import CifRow, read_cif
from mxt_pipeline.caldb.config import config_path, find_entry, read_config
from mxt_pipeline.caldb.index import index_path
from mxt_pipeline.caldb.select import CaldbQuery, select
from mxt_pipeline.errors import MXTCaldbError, MXTError, MXTServiceError
from mxt_pipeline.services.files import cached_file, partial_file, sha256_file, target_in

__all__ = ["CaldbEntry", "LocalBackend", "RemoteBackend", "default_caldb_root", "default_cache_dir"]

#: API prefix of the CALDB service.
API = "/api/v1"


def default_caldb_root() -> Path:
    """``$CALDB`` when set, else the bundled synthetic CALDB."""
    env = os.environ.get("CALDB")
    if env:
        return Path(env)
    from mxt_pipeline.datapaths import bundled_caldb_dir

    return bundled_caldb_dir()


def default_cache_dir() -> Path:
    """Download folder when none is given: ``$MXT_CALDB_CACHE``, else ``~/.cache/mxt_pipeline/caldb``."""
    env = os.environ.get("MXT_CALDB_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mxt_pipeline" / "caldb"


@dataclass(frozen=True)
class CaldbEntry:
    """A selected dataset: its CIF row plus what the store knows about the file.

    ``sha256``/``size``/``file_id`` come from the service (None locally until the file
    is hashed); ``product_type`` is ``bcf``, ``cpf`` or ``onboard`` (upload class).
    """

    row: CifRow
    sha256: str | None = None
    size: int | None = None
    file_id: int | None = None
    product_type: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def relpath(self) -> str:
        return self.row.relpath


def product_type(row: CifRow) -> str:
    """``onboard`` for the YAML upload class (CAL_XNO -1 under ``upload/``), else the class."""
    if row.cal_xno == -1 and "/upload/" in f"/{row.cal_dir}/":
        return "onboard"
    return row.cal_clas.lower()


class LocalBackend:
    """A CALDB directory on disk.

    Parameters
    ----------
    root : path-like, optional
        CALDB root; default :func:`default_caldb_root`.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_caldb_root()
        # Where the root came from, for the error messages: a wrong $CALDB set long ago
        # in a shell profile is otherwise hard to find.
        self.origin = "given" if root is not None else ("$CALDB" if os.environ.get("CALDB") else "bundled")
        self._cache: dict[Path, tuple[tuple[int, int], list[CifRow]]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalBackend(root={str(self.root)!r})"

    def index_file(self, telescop: str, instrume: str) -> Path:
        """The index of ``instrume``: from caldb.config when it lists it, else the default."""
        cfg = config_path(self.root)
        if cfg.is_file():
            entry = find_entry(read_config(cfg), telescop, instrume)
            if entry is not None:
                return entry.cif_path({"CALDB": str(self.root)})
        return index_path(self.root, telescop, instrume)

    def rows(self, telescop: str, instrume: str) -> list[CifRow]:
        """The rows of an instrument's index (re-read when the file changes)."""
        path = self.index_file(telescop, instrume)
        try:
            st = path.stat()
        except FileNotFoundError:
            hint = ("; the path comes from the CALDB environment variable: set it to a CALDB root, or unset it "
                    "to use the bundled one" if self.origin == "$CALDB" else "")  # fmt: skip
            raise MXTCaldbError(
                f"no calibration index for {telescop} {instrume} in the CALDB at {self.root} "
                f"(expected {path}; build it with build_index or 'mxt caldb index'){hint}"
            ) from None
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        rows = read_cif(path)
        with self._lock:
            self._cache[path] = (stamp, rows)
        return rows

    def search(self, query: CaldbQuery) -> list[CaldbEntry]:
        """Select datasets (MXTCaldbNotFound when none)."""
        rows = self.rows(query.telescop, query.instrume)
        return [CaldbEntry(r, product_type=product_type(r)) for r in select(rows, query)]

    def source(self, entry: CaldbEntry) -> Path:
        """The file of ``entry`` in the CALDB (MXTCaldbError when it is missing)."""
        path = self.root / entry.row.cal_dir / entry.row.cal_file
        if not path.is_file():
            raise MXTCaldbError(f"indexed calibration file is missing: {entry.relpath}", file=path)
        return path

    def fetch(self, entry: CaldbEntry, download_path: str | os.PathLike[str] | None) -> Path:
        """The local file of ``entry``: in place, or copied into ``download_path``.

        The copy is atomic and skipped when an identical file is already there.
        """
        src = self.source(entry)
        if download_path is None:
            return src
        folder = Path(download_path)
        folder.mkdir(parents=True, exist_ok=True)
        target = target_in(folder, entry.row.cal_file)
        if target.resolve() == src.resolve():
            return target
        if cached_file(target, entry.sha256 or sha256_file(src)):
            return target
        with partial_file(target) as (_tmp, fh), open(src, "rb") as in_fh:
            shutil.copyfileobj(in_fh, fh)  # type: ignore[arg-type]
        return target

    def upload(self, path: str | os.PathLike[str], node: str | None = None) -> dict[str, Any]:
        """Ingest a file into this CALDB through the service's store (same rules)."""
        from mxt_pipeline.caldb.service.store import CaldbStore

        path = Path(path)
        with CaldbStore(self.root) as store:
            return store.ingest_path(node or _node_from_name(path.name), path.name, path)

    def close(self) -> None:
        """Nothing to release."""


def _node_from_name(name: str) -> str:
    head = name.split("_", 1)[0].upper()
    from mxt_pipeline.caldb.service.nodes import NODES

    if head in NODES:
        return head
    raise MXTCaldbError(f"cannot tell the instrument of {name!r}: give the node (MXT, ECL, VT)")


class RemoteBackend:
    """The CALDB service over HTTP.

    Parameters
    ----------
    url : str
        Service root URL (``http://host:port``).
    token : str, optional
        Bearer token (None: anonymous, the service will answer 401).
    max_tries, timeout : see :class:`~mxt_pipeline.services.RetryingClient`
    **client_kwargs
        Passed on to the RetryingClient (``sleep``, ``policy``, ``transport``).
    """

    def __init__(
        self, url: str, *, token: str | None = None, max_tries: int = 5, timeout: float = 30.0, **client_kwargs: Any
    ) -> None:
        from mxt_pipeline.services.http import RetryingClient

        self.url = url.rstrip("/")
        self.client = RetryingClient(self.url, token=token, max_tries=max_tries, timeout=timeout, **client_kwargs)

    def __repr__(self) -> str:
        return f"RemoteBackend(url={self.url!r}, client={self.client!r})"

    def search(self, query: CaldbQuery) -> list[CaldbEntry]:
        """Ask the service; raise MXTCaldbNotFound when it finds nothing."""
        from mxt_pipeline.errors import MXTCaldbNotFound

        params = {
            "telescop": query.telescop,
            "instrume": query.instrume,
            "codename": query.codename,
            "detnam": query.detnam,
            "filter": query.filter,
            "date": _date_param(query.date),
            "expr": query.expr or "-",
        }
        if query.time is not None:
            params["time"] = query.time
        if query.quality is not None:
            params["quality"] = str(query.quality)
        body = self.client.get_json(f"{API}/search", params=params)
        if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
            raise MXTServiceError(f"{self.url}{API}/search: unexpected answer (no 'rows' list)")
        entries = [_entry_from_json(item, self.url) for item in body["rows"]]
        if not entries:
            reason = body.get("reason")
            if isinstance(reason, str) and reason:
                # The service's reason already names the query (select()'s message).
                raise MXTCaldbNotFound(self.client.scrub(reason))
            raise MXTCaldbNotFound(f"no calibration file for {query.describe(query.mjd())}")
        return entries

    def fetch(self, entry: CaldbEntry, download_path: str | os.PathLike[str] | None) -> Path:
        """Download the entry's file (atomic, checksum-verified, cached)."""
        if entry.file_id is None:
            raise MXTServiceError(f"the service gave no file id for {entry.relpath}")
        folder = Path(download_path) if download_path is not None else default_cache_dir() / entry.row.instrume.lower()
        return self.client.download(
            f"{API}/files/{entry.file_id}", folder, filename=entry.row.cal_file, expected_sha256=entry.sha256
        )

    def upload(self, path: str | os.PathLike[str], node: str | None = None) -> dict[str, Any]:
        """Send a file to the service (PUT, raw body, SHA-256 header)."""
        from mxt_pipeline.services.http import CHECKSUM_HEADER

        path = Path(path)
        data = path.read_bytes()
        import hashlib

        resp = self.client.request(
            "PUT",
            f"{API}/upload/{node or _node_from_name(path.name)}/{path.name}",
            content=data,
            headers={CHECKSUM_HEADER: hashlib.sha256(data).hexdigest(), "Content-Type": "application/octet-stream"},
        )
        return resp.json()

    def close(self) -> None:
        self.client.close()


def _date_param(value: Any) -> str:
    """The ``date`` query parameter: 'now', '-', or a UTC date / date-time string."""
    from datetime import UTC, date, datetime

    if value is None:
        return "now"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "utc") and hasattr(value, "isot"):  # astropy Time
        return value.utc.isot
    return str(value)


def _entry_from_json(item: Any, url: str) -> CaldbEntry:
    if not isinstance(item, dict):
        raise MXTServiceError(f"{url}: malformed search row")
    try:
        row = CifRow.from_record(item["cif"])
        sha = item.get("sha256")
        if sha is not None and (not isinstance(sha, str) or len(sha) != 64):
            raise ValueError("bad sha256")
        file_id = item.get("file_id")
        return CaldbEntry(
            row,
            sha256=sha,
            size=item.get("size"),
            file_id=None if file_id is None else int(file_id),
            product_type=str(item.get("type", product_type(row))),
            extra={k: v for k, v in item.items() if k not in ("cif", "sha256", "size", "file_id", "type")},
        )
    except (KeyError, TypeError, ValueError, MXTError) as exc:
        # Server data are untrusted: any malformed row is the service's fault.
        raise MXTServiceError(f"{url}: malformed search row: {exc}") from None
