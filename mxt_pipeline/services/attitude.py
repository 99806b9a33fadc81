"""Client of the attitude service: reconstructed attitude by time range.

The pipelines read attitude from the ATT file of a dataset; a dataset without one
(``files.att`` null in ``dataset.json``) takes it from the attitude service
(``mxt attitude serve``, :mod:`mxt_pipeline.attitude`) through :class:`AttitudeClient`:
the one FSC token (:func:`~mxt_pipeline.services.tokens.resolve_token`), retries with
backoff and ``Retry-After`` and the HTTP error mapping of
:class:`~mxt_pipeline.services.http.RetryingClient`, and a checksum-verified atomic
download of the answer (an MXT_ATT product) read by the I/O layer's reader.

Nothing is filled in: rows that are not finite unit quaternions are refused (naming the
service, the time range and the row); the parts of the range the answer does not
cover and the sampling gaps longer than ``max_gap_s`` are listed in
:attr:`FetchedAttitude.gaps` (the calibration's screening makes them ATTITUDE gaps).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from mxt_pipeline.datamodel.attitude import Attitude, bad_quaternion
from mxt_pipeline.errors import (
    MXTAuthError,
    MXTCaldbNotFound,
    MXTError,
    MXTInputError,
    MXTServiceError,
    MXTServiceUnavailable,
)
from mxt_pipeline.io.products import read_attitude
from mxt_pipeline.services.files import sha256_file
from mxt_pipeline.services.http import RetryingClient
from mxt_pipeline.services.tokens import resolve_token

__all__ = ["AttitudeClient", "FetchedAttitude", "ATTITUDE_URL_ENV", "ATTITUDE_PATH", "resolve_attitude_url"]

#: Environment variable naming the attitude service (when neither ``--attitude-url`` nor
#: ``services.attitude_url`` of ``runtime_data.json`` does).
ATTITUDE_URL_ENV = "MXT_ATTITUDE_URL"
#: Path of the attitude endpoint under the service's URL.
ATTITUDE_PATH = "/api/v1/attitude"


def resolve_attitude_url(url: str | None = None) -> str | None:
    """The attitude service URL: ``url`` when given, else ``$MXT_ATTITUDE_URL``, else None.

    Raises
    ------
    MXTInputError
        The URL does not start with ``http://`` or ``https://``.
    """
    value = url if url else os.environ.get(ATTITUDE_URL_ENV, "").strip() or None
    if value is not None and not value.startswith(("http://", "https://")):
        source = "the attitude URL" if url else f"${ATTITUDE_URL_ENV}"
        raise MXTInputError(f"{source} must start with http:// or https://", keyword="services.attitude_url")
    return value


@dataclass(frozen=True)
class FetchedAttitude:
    """Attitude received from the service.

    Attributes
    ----------
    attitude : Attitude
        The rows of the range plus one sample either side.
    path : Path
        The MXT_ATT file received (checksum-verified).
    sha256 : str
        Its SHA-256.
    sources : tuple of str
        Archive files the rows come from.
    url : str
        The service.
    tstart, tstop : float
        The range asked for.
    gaps : tuple of (float, float)
        Parts of ``[tstart, tstop]`` without usable attitude: before the first or after
        the last row, and between rows more than ``max_gap_s`` apart.
    """

    attitude: Attitude
    path: Path
    sha256: str
    sources: tuple[str, ...]
    url: str
    tstart: float
    tstop: float
    gaps: tuple[tuple[float, float], ...] = ()

    def describe(self) -> str:
        """One line for logs and run reports (no token, no local path)."""
        text = (f"attitude of [{self.tstart:.3f}, {self.tstop:.3f}] from the service {self.url}: "
                f"{len(self.attitude)} rows from {', '.join(self.sources) or 'no file'} (sha256 {self.sha256[:16]})")  # fmt: skip
        if self.gaps:
            spans = ", ".join(f"[{a:.3f}, {b:.3f}]" for a, b in self.gaps)
            text += f"; no attitude (ATTITUDE gaps) in {spans}"
        return text


def attitude_gaps(time: np.ndarray, tstart: float, tstop: float, max_gap_s: float) -> list[tuple[float, float]]:
    """Parts of ``[tstart, tstop]`` that samples at ``time`` leave without attitude.

    The rule of the calibration's screening
    (:func:`mxt_pipeline.calib.screening.attitude_bad_times`): before the first and after
    the last sample, and between samples more than ``max_gap_s`` apart.
    """
    t = np.asarray(time, dtype=float)
    if t.size == 0:
        return [(tstart, tstop)]
    out: list[tuple[float, float]] = []
    if t[0] > tstart:
        out.append((tstart, min(float(t[0]), tstop)))
    if t.size > 1:
        dt = np.diff(t)
        for i in np.flatnonzero(dt > max_gap_s):
            a, b = max(float(t[i]), tstart), min(float(t[i + 1]), tstop)
            if b > a:
                out.append((a, b))
    if t[-1] < tstop:
        out.append((max(float(t[-1]), tstart), tstop))
    return [(a, b) for a, b in out if b > a]


class AttitudeClient:
    """Client of one attitude service.

    Parameters
    ----------
    url : str
        The service's root URL (``http://host:8510``).
    token, runtime_data : optional
        Token sources, as for every FSC service (:func:`mxt_pipeline.services.resolve_token`).
    max_tries : int
        Attempts per request.
    cache_dir : path-like, optional
        Where answers are downloaded and kept.  Default: a temporary folder of the
        client, removed by :meth:`close` (the attitude stays in memory; the answer's
        ``path`` is then gone).
    client_kwargs : dict
        Passed to the RetryingClient (tests: ``transport``, ``sleep``).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        runtime_data=None,
        max_tries: int = 5,
        cache_dir: str | os.PathLike[str] | None = None,
        **client_kwargs,
    ) -> None:
        self.url = url.rstrip("/")
        self._cache = None if cache_dir is None else Path(cache_dir)
        self._own_cache: Path | None = None
        self._client = RetryingClient(self.url, token=resolve_token(token, runtime_data), max_tries=max_tries,
                                      **client_kwargs)  # fmt: skip

    def __repr__(self) -> str:
        return f"AttitudeClient(url={self.url!r}, client={self._client!r})"

    def close(self) -> None:
        """Close the connection pool; remove the client's own temporary folder."""
        self._client.close()
        if self._own_cache is not None:
            shutil.rmtree(self._own_cache, ignore_errors=True)
            self._own_cache = self._cache = None

    def __enter__(self) -> AttitudeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, tstart: float, tstop: float, *, max_gap_s: float = 60.0) -> FetchedAttitude:
        """The attitude of ``[tstart, tstop]`` (plus one sample either side).

        Parameters
        ----------
        tstart, tstop : float
            Mission seconds.
        max_gap_s : float
            Sampling gaps longer than this are listed in ``gaps`` (the calibration's
            ``max_attitude_gap_s``).

        Raises
        ------
        MXTInputError
            Bad range; or the answer holds a row that is not a finite unit quaternion,
            or is not a valid MXT_ATT product (message: service, range, file, row).
        MXTServiceError
            The service has no attitude for the range (status 404), or refuses it
            because an archive file it needs is unusable (422, naming file and row).
        MXTAuthError
            Token missing or refused (401/403).
        MXTServiceUnavailable
            The service stayed unreachable, busy or not ready (503) after every try.
        """
        tstart, tstop = float(tstart), float(tstop)
        if not (np.isfinite(tstart) and np.isfinite(tstop)) or tstop < tstart:
            raise MXTInputError(f"bad attitude range [{tstart}, {tstop}]", keyword="tstart/tstop")
        what = f"attitude of [{tstart:.3f}, {tstop:.3f}] from {self.url}"
        if self._cache is None:
            self._cache = self._own_cache = Path(tempfile.mkdtemp(prefix="mxt_att_"))
        name = f"mxt_att_{tstart:.3f}_{tstop:.3f}.fits"
        params = {"tstart": repr(tstart), "tstop": repr(tstop)}
        try:
            path = self._client.download(ATTITUDE_PATH, self._cache, filename=name, params=params)
        except MXTCaldbNotFound as exc:  # 404: no coverage (not a CALDB matter)
            raise MXTServiceError(f"{what}: the service has none ({exc.message})", status=404) from None
        except (MXTAuthError, MXTServiceUnavailable, MXTServiceError) as exc:
            raise type(exc)(f"{what}: {exc.message}", status=exc.status) from None
        try:
            att = read_attitude(path)
            header = fits.getheader(path, 0)
        except MXTError as exc:
            raise MXTInputError(f"{what}: unusable answer: {exc.message}", file=exc.file, hdu=exc.hdu,
                                column=exc.column, keyword=exc.keyword) from None  # fmt: skip
        # read_attitude checks the quaternions too; this names the row even if that rule
        # ever loosens, and refuses NaN explicitly.
        found = bad_quaternion(np.asarray(att["QPARAM"]))
        if found is not None:
            raise MXTInputError(f"{what}: row {found[0]}: {found[1]}", file=path, hdu="ATTITUDE", column="QPARAM")
        n = int(header.get("ATTSRCN", 0))
        sources = tuple(str(header.get(f"ATTSR{i:03d}")) for i in range(1, n + 1))
        sha = sha256_file(path)
        gaps = attitude_gaps(np.asarray(att["TIME"], dtype=float), tstart, tstop, max_gap_s)
        return FetchedAttitude(att, path, sha, sources, self.url, tstart, tstop, tuple(gaps))

