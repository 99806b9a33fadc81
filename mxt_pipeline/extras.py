"""Optional dependencies: import them on use, or say which pip extra installs them.

The core pipeline installs without the web service (``service``: Starlette, uvicorn),
the MINUIT cross-check of the detector (``validation``: iminuit) and the compiled
kernels (``fast``: numba, whose absence only costs speed: every kernel has a numpy or
pure-Python twin tested against it).  A command that needs a missing extra stops with
:class:`~mxt_pipeline.errors.MXTDependencyError` naming it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mxt_pipeline.errors import MXTDependencyError

__all__ = ["EXTRAS", "require"]

#: pip extra -> the modules it provides.
EXTRAS: dict[str, tuple[str, ...]] = {
    "service": ("starlette", "uvicorn", "jinja2"),
    "validation": ("iminuit",),
    "fast": ("numba",),
}


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise an error naming the extra that installs it.

    Parameters
    ----------
    module : str
        Module to import (``"starlette"``).
    extra : str
        The pip extra of ``mxt-pipeline`` that installs it (a key of :data:`EXTRAS`).
    purpose : str
        What needs it, for the message (``"mxt caldb serve"``).

    Raises
    ------
    MXTDependencyError
        The module cannot be imported.
    """
    if module not in EXTRAS.get(extra, ()):
        raise ValueError(f"{module!r} is not provided by the extra {extra!r}")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MXTDependencyError(
            f"{purpose} needs {module}, which is not installed ({exc}); "
            f"install it with: pip install 'mxt-pipeline[{extra}]'"
        ) from None
