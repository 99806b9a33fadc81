"""``CaDBIO``: one door to the calibration database for every task.

The seed's API (FSC messaging ``caldbio``), kept as is::

    client = CaDBIO(use_tokens=True, max_tries=5)
    client.search("MXT", "teldef", download_path="/here")   # -> [Path(...)]

It spares callers URL building and HTTP status handling and uses the one FSC token.
The backend is chosen once, in this order: ``url=`` argument, ``MXT_CALDB_URL``
(remote CALDB service), ``caldb=`` argument, ``$CALDB``, the bundled
``fixtures_caldb/`` (local directories).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mxt_pipeline.caldb.backends import CaldbEntry, LocalBackend, RemoteBackend
from mxt_pipeline.caldb.select import CaldbQuery, DateLike
from mxt_pipeline.errors import MXTAuthError, MXTCaldbAmbiguous, MXTInputError

__all__ = ["CaDBIO", "CALDB_URL_ENV"]

#: Environment variable holding the CALDB service URL.
CALDB_URL_ENV = "MXT_CALDB_URL"


class CaDBIO:
    """Client of the calibration database.

    Parameters
    ----------
    use_tokens : bool
        Send the FSC token to the remote service (seed API).  The token comes from
        ``token``, then ``runtime_data`` (``runtime_data.json`` of a pipeline run),
        then ``MXT_TOKEN``.  Without a token a remote client fails at once with
        :class:`~mxt_pipeline.errors.MXTAuthError`.
    max_tries : int
        Attempts per HTTP request (connection errors, timeouts, 429 and 5xx retried).
    url : str, optional
        CALDB service URL; default ``$MXT_CALDB_URL``.  Exclusive with ``caldb``.
    caldb : path-like, optional
        Local CALDB root; default ``$CALDB``, else the bundled ``fixtures_caldb/``.
    token : str, optional
        Explicit token.
    runtime_data : path-like or mapping, optional
        ``runtime_data.json`` (or its content) of the pipeline run.
    telescop : str
        Mission of the queries (``SVOM``).
    timeout : float
        HTTP timeout in seconds.
    **client_kwargs
        Passed to :class:`~mxt_pipeline.services.RetryingClient` (``sleep``,
        ``policy``, ``transport``; tests).
    """

    def __init__(
        self,
        use_tokens: bool = True,
        max_tries: int = 5,
        *,
        url: str | None = None,
        caldb: str | os.PathLike[str] | None = None,
        token: str | None = None,
        runtime_data: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        telescop: str = "SVOM",
        timeout: float = 30.0,
        **client_kwargs: Any,
    ) -> None:
        if url is not None and caldb is not None:
            raise MXTInputError("give either url= (remote CALDB service) or caldb= (local directory)")
        self.telescop = telescop
        self.use_tokens = use_tokens
        url = url if url is not None else (None if caldb is not None else os.environ.get(CALDB_URL_ENV) or None)
        self.backend: LocalBackend | RemoteBackend
        if url:
            secret = None
            if use_tokens:
                from mxt_pipeline.services.tokens import resolve_token

                secret = resolve_token(token, runtime_data)
                if secret is None:
                    # Worded for the command line, where most people meet it; the
                    # library's own options (token=, use_tokens=) are in the docstring.
                    raise MXTAuthError(
                        f"no token for the CALDB service at {url}: set the MXT_TOKEN environment variable, or "
                        "give a runtime_data.json holding a 'token' key"
                    )
            self.backend = RemoteBackend(url, token=secret, max_tries=max_tries, timeout=timeout, **client_kwargs)
        else:
            self.backend = LocalBackend(caldb)

    def __repr__(self) -> str:
        return f"CaDBIO(backend={self.backend!r}, use_tokens={self.use_tokens})"

    def __enter__(self) -> CaDBIO:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the HTTP connections (remote backend)."""
        self.backend.close()

    @property
    def is_remote(self) -> bool:
        return isinstance(self.backend, RemoteBackend)

    def _query(
        self, instrument: str, codename: str, date: DateLike, time: str | None, expr: str | None,
        detnam: str, filter: str,
    ) -> CaldbQuery:  # fmt: skip
        if not isinstance(instrument, str) or not instrument.strip():
            raise MXTInputError("instrument must be a non-empty string (MXT, ECL, VT)")
        if not isinstance(codename, str) or not codename.strip():
            raise MXTInputError("code name must be a non-empty string (e.g. teldef)")
        return CaldbQuery(
            self.telescop, instrument.strip().upper(), codename.strip().upper(), detnam, filter,
            date, time, expr,
        )  # fmt: skip

    def entries(
        self,
        instrument: str,
        codename: str,
        *,
        date: DateLike = "now",
        time: str | None = None,
        expr: str | None = None,
        detnam: str = "-",
        filter: str = "-",
    ) -> list[CaldbEntry]:
        """The selected datasets without fetching files (MXTCaldbNotFound when none)."""
        return self.backend.search(self._query(instrument, codename, date, time, expr, detnam, filter))

    def search(
        self,
        instrument: str,
        codename: str,
        download_path: str | os.PathLike[str] | None = None,
        *,
        date: DateLike = "now",
        time: str | None = None,
        expr: str | None = None,
        detnam: str = "-",
        filter: str = "-",
    ) -> list[Path]:
        """Select calibration files and return their local paths.

        Parameters
        ----------
        instrument : str
            ``MXT``, ``ECL`` or ``VT`` (case-insensitive).
        codename : str
            CAL_CNAM, case-insensitive (``teldef``, ``psf``, ...).
        download_path : path-like, optional
            Folder receiving the files.  Remote default: ``$MXT_CALDB_CACHE`` or
            ``~/.cache/mxt_pipeline/caldb/<inst>``; local default: the files in place.
        date : str or datetime
            Observation date: ``'now'`` (default), ``'-'`` (no time cut), ISO date or
            date-time (UTC), a datetime; see :func:`~mxt_pipeline.caldb.select.requested_mjd`.
        time : str, optional
            ``hh:mm:ss`` with a date-only ``date``.
        expr : str, optional
            Boundary expression, e.g. ``'energy.eq.1.5'``.
        detnam, filter : str
            Detector and filter (``-``: no selection).

        Returns
        -------
        list of pathlib.Path
            One path per distinct file, most recent validity first.

        Raises
        ------
        MXTCaldbNotFound
            Nothing matches (the message names instrument, code name, date and
            expression).
        MXTAuthError, MXTServiceUnavailable, MXTServiceError
            Remote failures.
        """
        found = self.entries(instrument, codename, date=date, time=time, expr=expr, detnam=detnam, filter=filter)
        paths: list[Path] = []
        seen: set[str] = set()
        for entry in found:
            if entry.relpath in seen:
                continue
            seen.add(entry.relpath)
            paths.append(self.backend.fetch(entry, download_path))
        return paths

    def search_one(
        self,
        instrument: str,
        codename: str,
        download_path: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> tuple[Path, int]:
        """Exactly one dataset: return ``(path, extension number)``.

        Raises
        ------
        MXTCaldbAmbiguous
            When several datasets (file and extension) match; narrow the query with
            ``detnam``, ``filter`` or ``expr``.
        """
        found = self.entries(instrument, codename, **kwargs)
        distinct = {(e.relpath, e.row.cal_xno): e for e in found}
        if len(distinct) > 1:
            listing = ", ".join(f"{p}[{x}]" for p, x in sorted(distinct))
            raise MXTCaldbAmbiguous(
                f"{len(distinct)} datasets match {instrument.upper()} {codename.upper()}: {listing}; "
                "narrow the query with detnam, filter or expr"
            )
        entry = next(iter(distinct.values()))
        return self.backend.fetch(entry, download_path), entry.row.cal_xno

    def upload(self, path: str | os.PathLike[str], instrument: str | None = None) -> dict[str, Any]:
        """Upload a calibration file (FITS with CALDB keywords, or an upload-class YAML).

        Remote: PUT to the service.  Local: ingested in the CALDB directory with the
        service's rules (SQLite store, index regenerated).
        """
        return self.backend.upload(path, instrument)
