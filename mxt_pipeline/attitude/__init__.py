"""The attitude service: reconstructed attitude by time range, from an archive of ATT files.

:mod:`.archive` indexes the MXT_ATT files of a folder in SQLite and selects the rows of
a time range; :mod:`.app` is the Starlette application and :mod:`.server` runs it
(``mxt attitude serve``).  The client is :class:`mxt_pipeline.services.attitude.AttitudeClient`.
Importing this package imports neither Starlette nor uvicorn (the pip extra
``service``): the web parts load on first use of :func:`create_app`, :func:`serve` or
:class:`AttitudeServiceThread`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AttitudeArchive", "AttitudeSelection", "create_app", "serve", "AttitudeServiceThread"]

_LAZY = {
    "AttitudeArchive": "mxt_pipeline.attitude.archive",
    "AttitudeSelection": "mxt_pipeline.attitude.archive",
    "create_app": "mxt_pipeline.attitude.app",
    "serve": "mxt_pipeline.attitude.server",
    "AttitudeServiceThread": "mxt_pipeline.attitude.server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    if name in ("create_app", "serve", "AttitudeServiceThread"):
        from mxt_pipeline.extras import require

        for dep in ("starlette", "uvicorn"):
            require(dep, "service", f"the attitude service ({name})")
    return getattr(importlib.import_module(module), name)
