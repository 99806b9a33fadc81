"""Weekly SAA files of the science database, from a local folder or the service.

The time screening (:mod:`mxt_pipeline.calib.screening`) takes SAA intervals in memory;
this client finds the file of each week (``floor(MET / 604800)``), downloads it through
:class:`mxt_pipeline.services.RetryingClient` when the archive is a URL, and reads it
with :func:`mxt_pipeline.io.products.read_saa`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from mxt_pipeline.datamodel import SAAIntervals, week_of
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io.products import read_saa
from mxt_pipeline.services.http import RetryingClient
from mxt_pipeline.services.tokens import resolve_token

__all__ = ["SAAArchive"]


class SAAArchive:
    """Weekly SAA files of the science database, by week number.

    Parameters
    ----------
    folder : path-like, optional
        Local folder holding ``mxt_saa_w<WEEK>.fits`` (for a dataset: its ``saa/``).
    url : str, optional
        Science-database URL; the file of week ``W`` is ``<url>/mxt_saa_w<W>.fits``,
        fetched through :class:`mxt_pipeline.services.RetryingClient` (bearer token,
        retries with backoff, checksum-verified atomic downloads into ``cache_dir``).
    token, runtime_data : optional
        Token sources, as for every FSC service
        (:func:`mxt_pipeline.services.resolve_token`).
    max_tries : int
        Attempts per request.
    cache_dir : path-like, optional
        Where downloaded files go (default: a temporary folder per archive).
    client_kwargs : dict
        Passed to the RetryingClient (tests: ``transport``, ``sleep``).
    """

    NAME = "mxt_saa_w{week}.fits"

    def __init__(
        self,
        folder: str | os.PathLike[str] | None = None,
        *,
        url: str | None = None,
        token: str | None = None,
        runtime_data=None,
        max_tries: int = 5,
        cache_dir: str | os.PathLike[str] | None = None,
        **client_kwargs,
    ) -> None:
        if (folder is None) == (url is None):
            raise MXTInputError("give exactly one of folder= or url= for the SAA files")
        self.folder = None if folder is None else Path(folder)
        self.url = url
        self._client = None
        self._cache = None if cache_dir is None else Path(cache_dir)
        if url is not None:
            self._client = RetryingClient(
                url, token=resolve_token(token, runtime_data), max_tries=max_tries, **client_kwargs
            )

    def __repr__(self) -> str:
        where = f"url={self.url!r}" if self.url else f"folder={str(self.folder)!r}"
        return f"SAAArchive({where})"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> SAAArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def path(self, week: int) -> Path:
        """Local path of the file of ``week`` (downloaded first for a URL archive).

        Raises
        ------
        MXTInputError
            The file is missing from the folder.
        MXTServiceError
            (subclasses) when the service refuses or fails.
        """
        name = self.NAME.format(week=int(week))
        if self.folder is not None:
            p = self.folder / name
            if not p.is_file():
                raise MXTInputError(f"no SAA file for week {int(week)}", file=p)
            return p
        if self._cache is None:
            self._cache = Path(tempfile.mkdtemp(prefix="mxt_saa_"))
        return self._client.download(name, self._cache, filename=name)

    def intervals(self, weeks) -> list[SAAIntervals]:
        """The SAA intervals of every week listed (each file read once)."""
        return [read_saa(self.path(w)) for w in sorted({int(w) for w in np.atleast_1d(weeks)})]

    def for_range(self, tstart: float, tstop: float) -> list[SAAIntervals]:
        """The SAA intervals of every week overlapping ``[tstart, tstop]``."""
        w0, w1 = week_of(tstart), week_of(tstop)
        return self.intervals(np.arange(int(w0), int(w1) + 1))
