"""The CALDB web service: storage nodes, SQLite store, upload class, Starlette app.

Importing this package does not import Starlette or uvicorn: the web parts
(:mod:`.app`, :mod:`.server`) are imported on first use of :func:`create_app` /
:func:`serve` / :class:`ServiceThread`, so the client side and the index tools stay
light.
"""

from __future__ import annotations

from typing import Any

from mxt_pipeline.caldb.service.nodes import NODES, StorageNode, get_node
from mxt_pipeline.caldb.service.upload import UPLOAD_NAME_RULE, UploadName, parse_upload_name

__all__ = [
    "NODES",
    "StorageNode",
    "get_node",
    "UPLOAD_NAME_RULE",
    "UploadName",
    "parse_upload_name",
    "CaldbStore",
    "TokenSet",
    "create_app",
    "serve",
    "ServiceThread",
]

_LAZY = {
    "CaldbStore": "mxt_pipeline.caldb.service.store",
    "TokenSet": "mxt_pipeline.caldb.service.auth",
    "create_app": "mxt_pipeline.caldb.service.app",
    "serve": "mxt_pipeline.caldb.service.server",
    "ServiceThread": "mxt_pipeline.caldb.service.server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    if name in ("create_app", "serve", "ServiceThread"):
        from mxt_pipeline.extras import require

        for dep in ("starlette", "uvicorn"):
            require(dep, "service", f"the CALDB service ({name})")

    return getattr(importlib.import_module(module), name)
