"""Running the attitude service with uvicorn: blocking (:func:`serve`) or in a thread.

``mxt attitude serve --root DIR`` calls :func:`serve`: the service listens at once and
answers 503 (``Retry-After``) until the SQLite index of the archive is built in a
background thread; the archive is then rescanned every ``rescan_s`` seconds (new,
changed and removed files), or at once on ``POST /api/v1/reindex``.  Tokens come from
``--token-file`` and/or ``$MXT_ATTITUDE_TOKENS``; the clients send the one FSC token
(``MXT_TOKEN`` or ``runtime_data.json``), exactly as to the CALDB service.
:class:`AttitudeServiceThread` runs the same application in a daemon thread on a free
port (tests, notebooks).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import uvicorn

from mxt_pipeline.attitude.app import DEFAULT_SLOTS, create_app
from mxt_pipeline.attitude.archive import AttitudeArchive, Slots
from mxt_pipeline.caldb.service.auth import TokenSet, load_tokens, require_tokens
from mxt_pipeline.caldb.service.server import AppThread, uvicorn_config
from mxt_pipeline.errors import MXTError

__all__ = ["serve", "AttitudeServiceThread", "Indexer", "TOKENS_ENV"]

log = logging.getLogger(__name__)

#: Environment variable listing the tokens the attitude service accepts.
TOKENS_ENV = "MXT_ATTITUDE_TOKENS"


class Indexer:
    """Builds the archive's index in a daemon thread, then rescans every ``rescan_s`` s."""

    def __init__(self, archive: AttitudeArchive, rescan_s: float | None) -> None:
        self.archive = archive
        self.rescan_s = rescan_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="attitude-indexer", daemon=True)

    def start(self) -> Indexer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.archive.refresh()
            except (MXTError, OSError) as exc:  # keep serving what is indexed; try again later
                log.error("attitude index refresh failed: %s", exc)
            if self.rescan_s is None or self._stop.wait(self.rescan_s):
                return


def serve(
    root: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 8510,
    *,
    token_file: str | os.PathLike[str] | None = None,
    allow_anonymous: bool = False,
    log_level: str = "info",
    state_dir: str | os.PathLike[str] | None = None,
    rescan_s: float | None = 60.0,
    max_concurrent: int = DEFAULT_SLOTS,
) -> None:
    """Serve the attitude archive at ``root`` until interrupted.

    Raises
    ------
    MXTInputError
        No token configured (and not ``allow_anonymous``), or ``root`` is not a folder.
    """
    tokens = load_tokens(token_file, env_var=TOKENS_ENV)
    require_tokens(tokens, allow_anonymous=allow_anonymous, env_var=TOKENS_ENV)
    archive = AttitudeArchive(root, state_dir=state_dir, build=False)
    app = create_app(archive, tokens, allow_anonymous=allow_anonymous, slots=Slots(max_concurrent))
    indexer = Indexer(archive, rescan_s).start()
    try:
        uvicorn.Server(uvicorn_config(app, host, port, log_level)).run()
    finally:
        indexer.stop()
        archive.close()


class AttitudeServiceThread(AppThread):
    """The attitude service in a daemon thread, on ``host`` and a free port by default.

    Parameters
    ----------
    root : path-like
        Folder of ATT files.
    tokens : TokenSet or iterable of str
        Accepted tokens.
    state_dir : path-like, optional
        Where the SQLite index goes (default ``<root>/.attitude_service``).
    build : bool
        Index the archive before serving (False: the service answers 503 until
        ``archive.refresh()`` is called).
    max_concurrent : int
        Request slots (more at once: 503).

    Examples
    --------
    >>> with AttitudeServiceThread(root, ["secret"]) as svc:   # doctest: +SKIP
    ...     AttitudeClient(svc.url, token="secret").fetch(t0, t1)
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        tokens: TokenSet | list[str] | tuple[str, ...] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: str | os.PathLike[str] | None = None,
        build: bool = True,
        allow_anonymous: bool = False,
        max_concurrent: int = DEFAULT_SLOTS,
        log_level: str = "warning",
    ) -> None:
        self.archive = AttitudeArchive(Path(root), state_dir=state_dir, build=build)
        self.slots = Slots(max_concurrent)
        token_set = tokens if isinstance(tokens, TokenSet) else TokenSet(tokens)
        app = create_app(self.archive, token_set, allow_anonymous=allow_anonymous, slots=self.slots)
        super().__init__(app, host=host, port=port, log_level=log_level)

    def __repr__(self) -> str:
        return f"AttitudeServiceThread(root={str(self.archive.root)!r}, host={self.host!r})"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, then close the index."""
        super().stop(timeout)
        self.archive.close()
