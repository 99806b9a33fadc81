"""Running the CALDB service with uvicorn: blocking (:func:`serve`) or in a thread.

``mxt caldb serve --root DIR --host 127.0.0.1 --port N`` calls :func:`serve`.  The
tokens come from ``--token-file`` and/or ``$MXT_CALDB_TOKENS``; a service without any
token refuses to start unless ``--allow-anonymous`` is given (local development).
:class:`ServiceThread` runs the same application in a background thread on a free
port (tests, notebooks).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import uvicorn

from mxt_pipeline.caldb.service.app import create_app
from mxt_pipeline.caldb.service.auth import TokenSet, load_tokens, require_tokens
from mxt_pipeline.caldb.service.store import DEFAULT_MAX_UPLOAD, CaldbStore
from mxt_pipeline.errors import MXTError

__all__ = ["serve", "ServiceThread", "AppThread", "uvicorn_config"]


def uvicorn_config(app, host: str, port: int, log_level: str) -> uvicorn.Config:
    """The uvicorn settings of every FSC service of this package (no server header, no
    uvicorn access log: it writes whole query strings)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        server_header=False,
        # uvicorn's access log writes whole query strings; the application's own
        # access log (AccessLog) writes the parameter names only.
        access_log=False,
        lifespan="off",
    )


def serve(
    root: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 8500,
    *,
    token_file: str | os.PathLike[str] | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
    allow_anonymous: bool = False,
    log_level: str = "info",
    state_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Serve the CALDB at ``root`` until interrupted.

    ``state_dir`` holds the service's SQLite index and upload staging area (default
    ``<root>/.caldb_service``; ``mxt caldb serve`` passes one outside the root).

    Raises
    ------
    MXTInputError
        No token configured (and not ``allow_anonymous``).
    """
    tokens = load_tokens(token_file)
    require_tokens(tokens, allow_anonymous=allow_anonymous)
    store = CaldbStore(root, max_upload_bytes=max_upload_bytes, state_dir=state_dir)
    app = create_app(store, tokens, allow_anonymous=allow_anonymous)
    uvicorn.Server(uvicorn_config(app, host, port, log_level)).run()


class AppThread:
    """Any ASGI application served by uvicorn in a daemon thread (port 0: a free one)."""

    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.app = app
        self.host = host
        self.server = uvicorn.Server(uvicorn_config(app, host, port, log_level))
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r})"

    @property
    def port(self) -> int:
        """The port actually listened on."""
        servers = getattr(self.server, "servers", None)
        if not servers:
            raise MXTError("the service is not started")
        return int(servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0):
        """Start serving; return once the socket listens."""
        self._thread = threading.Thread(target=self.server.run, name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise MXTError("the service thread stopped during start-up")
            if time.monotonic() > deadline:
                raise MXTError(f"the service did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServiceThread(AppThread):
    """The CALDB service running in a daemon thread, on ``host`` and a free port by default.

    Parameters
    ----------
    root : path-like
        CALDB root.
    tokens : TokenSet or iterable of str
        Accepted tokens.
    host, port : str, int
        Where to listen; port 0 lets the system choose (read :attr:`url`).
    max_upload_bytes : int
        Upload limit.
    allow_anonymous : bool
        No authentication.
    log_level : str
        uvicorn log level.

    Examples
    --------
    >>> with ServiceThread(root, ["secret"]) as svc:   # doctest: +SKIP
    ...     CaDBIO(url=svc.url, token="secret").search("MXT", "teldef")
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        tokens: TokenSet | list[str] | tuple[str, ...] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
        allow_anonymous: bool = False,
        log_level: str = "warning",
    ) -> None:
        self.store = CaldbStore(Path(root), max_upload_bytes=max_upload_bytes)
        token_set = tokens if isinstance(tokens, TokenSet) else TokenSet(tokens)
        app = create_app(self.store, token_set, allow_anonymous=allow_anonymous)
        super().__init__(app, host=host, port=port, log_level=log_level)

    def __repr__(self) -> str:
        return f"ServiceThread(root={str(self.store.root)!r}, host={self.host!r})"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, then close the store's read connection."""
        super().stop(timeout)
        self.store.close()
