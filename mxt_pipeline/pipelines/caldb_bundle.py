"""Calibration files for bricks: resolve CALDB code names, load the models, record them.

Each brick declares the CALDB *code names* it needs (``TELDEF``, ``PSF``, ...).  Before
a run starts, the union of the code names of all its bricks is resolved once, for the
observation date, through a :class:`CalibrationProvider` (normally
:class:`CaldbProvider`, i.e. :class:`~mxt_pipeline.caldb.CaDBIO`); a CALDB that is
down therefore stops the run before any product is made.  Each brick's core then gets
a :class:`CalibrationBundle` holding only the models of its own code names, as
attributes named by the lower-case code name (``cal.teldef``), and the run report
lists the files each brick used with their SHA-256.

The *CALDB version* of a run is derived from the files it used (see
:func:`caldb_version`): the newest indexing date and a short hash of the files'
checksums, so a changed calibration file gives a new version even on the same day.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mxt_pipeline.caldb import CaDBIO
from mxt_pipeline.caldb.products import load_calibration
from mxt_pipeline.errors import MXTCaldbNotFound
from mxt_pipeline.services.files import sha256_file

__all__ = [
    "CaldbFile",
    "CalibrationBundle",
    "CalibrationProvider",
    "CaldbProvider",
    "FileProvider",
    "ObjectProvider",
    "provider_from",
    "caldb_version",
]

Loader = Callable[[str, Path], Any]


@dataclass(frozen=True)
class CaldbFile:
    """One calibration file selected for a run."""

    code: str
    path: Path
    sha256: str
    xno: int = 1
    cal_date: str | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "file": self.path.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "extension": self.xno,
            "cal_date": self.cal_date,
            "description": self.description,
        }


class CalibrationBundle:
    """The calibration models a brick's core receives, by lower-case code name.

    ``bundle.teldef`` is the TELDEF model; a code name the brick did not declare reads
    as None (so cores written for an optional model can test it).
    """

    def __init__(self, models: Mapping[str, Any], files: Mapping[str, CaldbFile] | None = None):
        self._models = {k.lower(): v for k, v in models.items()}
        self.files = {k.upper(): v for k, v in (files or {}).items()}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._models.get(name.lower())

    def __getitem__(self, code: str) -> Any:
        return self._models[code.lower()]

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.lower() in self._models

    @property
    def codes(self) -> list[str]:
        return sorted(c.upper() for c in self._models)

    def __repr__(self) -> str:
        return f"CalibrationBundle({self.codes})"


@runtime_checkable
class CalibrationProvider(Protocol):
    """Where a run gets its calibration."""

    def resolve(self, codes: Sequence[str], date: datetime | None) -> dict[str, CaldbFile]:
        """Select one file per code name valid at ``date`` (None: now)."""

    def load(self, file: CaldbFile) -> Any:
        """The in-memory model of a selected file."""


def _default_loader(code: str, path: Path) -> Any:
    return load_calibration(code, path)


class _CachingLoad:
    """Loads each file once per provider (several bricks share TELDEF, PSF, ...)."""

    def __init__(self, loader: Loader) -> None:
        self._loader = loader
        self._cache: dict[tuple[str, str], Any] = {}

    def __call__(self, file: CaldbFile) -> Any:
        key = (file.code, file.sha256)
        if key not in self._cache:
            self._cache[key] = self._loader(file.code, file.path)
        return self._cache[key]


class CaldbProvider:
    """Calibration through :class:`~mxt_pipeline.caldb.CaDBIO` (local CALDB or service).

    Parameters
    ----------
    client : CaDBIO
        The CALDB client (it holds the token and the retry policy).
    instrument : str
        Instrument of the queries.
    download_dir : path-like, optional
        Where remote files are downloaded (default: the client's cache).
    loader : callable, optional
        ``loader(code, path) -> model``; default
        :func:`mxt_pipeline.caldb.products.load_calibration`.
    """

    def __init__(self, client, *, instrument: str = "MXT", download_dir=None, loader: Loader | None = None):
        self.client = client
        self.instrument = instrument
        self.download_dir = download_dir
        self._load = _CachingLoad(loader or _default_loader)

    def __repr__(self) -> str:
        return f"CaldbProvider({self.client!r})"

    def resolve(self, codes: Sequence[str], date: datetime | None) -> dict[str, CaldbFile]:
        out: dict[str, CaldbFile] = {}
        when = date if date is not None else "now"
        for code in sorted({c.upper() for c in codes}):
            entries = self.client.entries(self.instrument, code, date=when)
            # The selection returns the most recent validity first; one file per code.
            entry = entries[0]
            path = Path(self.client.backend.fetch(entry, self.download_dir))
            sha = entry.sha256 or sha256_file(path)
            out[code] = CaldbFile(
                code, path, sha, xno=entry.row.cal_xno, cal_date=entry.row.cal_date, description=entry.row.cal_desc
            )
        return out

    def load(self, file: CaldbFile) -> Any:
        return self._load(file)

    def close(self) -> None:
        self.client.close()


class FileProvider:
    """Calibration from explicit files, one per code name (tests, standalone bricks).

    Parameters
    ----------
    files : mapping of code name to path
    loader : callable
        ``loader(code, path) -> model``.
    """

    def __init__(self, files: Mapping[str, str | os.PathLike[str]], loader: Loader | None = None):
        self.files = {k.upper(): Path(v) for k, v in files.items()}
        self._load = _CachingLoad(loader or _default_loader)

    def resolve(self, codes: Sequence[str], date: datetime | None) -> dict[str, CaldbFile]:
        out = {}
        for code in sorted({c.upper() for c in codes}):
            if code not in self.files:
                raise MXTCaldbNotFound(f"no calibration file given for code name {code}", keyword=code)
            path = self.files[code]
            if not path.is_file():
                raise MXTCaldbNotFound(f"calibration file for {code} not found", file=path)
            out[code] = CaldbFile(code, path, sha256_file(path))
        return out

    def load(self, file: CaldbFile) -> Any:
        return self._load(file)


class ObjectProvider:
    """Calibration models already in memory (a ``CalibrationSet``): nothing is fetched.

    Models are the attributes named by the lower-case code names.  No file is
    recorded, so the run report says the models came from memory.
    """

    def __init__(self, calset: Any):
        self.calset = calset

    def resolve(self, codes: Sequence[str], date: datetime | None) -> dict[str, CaldbFile]:
        out = {}
        for code in sorted({c.upper() for c in codes}):
            model = getattr(self.calset, code.lower(), None)
            if model is None:
                raise MXTCaldbNotFound(f"the calibration set in memory has no {code}", keyword=code)
            source = getattr(model, "path", None) or getattr(model, "source", None)
            path = Path(source) if isinstance(source, (str, os.PathLike)) else Path(f"<memory:{code}>")
            sha = sha256_file(path) if path.is_file() else _content_digest(code, model)
            out[code] = CaldbFile(code, path, sha, description="in memory")
        return out

    def load(self, file: CaldbFile) -> Any:
        return getattr(self.calset, file.code.lower())


def _content_digest(code: str, model: Any) -> str:
    """A stable identity of an in-memory model: the SHA-256 of its pickled state.

    Two processes holding equal models get the same digest, so runs with a calibration
    set in memory are idempotent too.  A model that cannot be pickled gets a digest of
    its identity in this process (the run key then changes from process to process).
    """
    import pickle

    try:
        blob = pickle.dumps((type(model).__module__, type(model).__qualname__, model.__dict__), protocol=5)
    except Exception:  # any pickling failure (lambdas, handles): fall back to the identity
        blob = f"memory:{code}:{id(model)}".encode()
    return hashlib.sha256(blob).hexdigest()


def provider_from(caldb: Any = None, *, token=None, runtime_data=None, url: str | None = None,
                  max_tries: int = 5, download_dir=None, **client_kwargs: Any) -> CalibrationProvider:
    """Build a provider from what a caller has.

    Parameters
    ----------
    caldb : None, path-like, CaDBIO, CalibrationProvider or a calibration set
        None: ``CaDBIO()`` defaults (``$MXT_CALDB_URL``, ``$CALDB``, the bundled
        CALDB); a path: a local CALDB root; a client or provider: used as is; any other
        object: its attributes are the models (:class:`ObjectProvider`).
    token, runtime_data, url, max_tries, client_kwargs
        Passed to :class:`~mxt_pipeline.caldb.CaDBIO` when one is built.
    """
    if isinstance(caldb, CalibrationProvider):
        return caldb

    if isinstance(caldb, CaDBIO):
        return CaldbProvider(caldb, download_dir=download_dir)
    if caldb is None or isinstance(caldb, (str, os.PathLike)):
        client = CaDBIO(
            max_tries=max_tries, url=url, caldb=None if url else caldb, token=token, runtime_data=runtime_data,
            **client_kwargs,
        )
        return CaldbProvider(client, download_dir=download_dir)
    return ObjectProvider(caldb)


def caldb_version(files: Iterable[CaldbFile]) -> str:
    """Version tag of a set of calibration files: ``YYYYMMDD-hhhhhh``.

    The date is the newest CALDB indexing date (``CAL_DATE``) among the files (or
    ``00000000`` when unknown); the suffix is the start of the SHA-256 of the sorted
    ``code:sha256`` pairs, so any change of any file changes the tag.
    """
    files = list(files)
    dates = [f.cal_date.replace("-", "") for f in files if f.cal_date]
    day = max(dates) if dates else "00000000"
    digest = hashlib.sha256("\n".join(sorted(f"{f.code}:{f.sha256}" for f in files)).encode()).hexdigest()
    return f"{day}-{digest[:6]}"
