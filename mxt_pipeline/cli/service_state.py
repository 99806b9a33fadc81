"""Where a service started by ``mxt caldb serve`` or ``mxt attitude serve`` keeps its index.

The index of an archive lives outside the archive (served folders may be read-only, and
two services must never share one index): ``$MXT_<KIND>_STATE_DIR`` when set, else
``$XDG_STATE_HOME/mxt/<kind>-<name>-<hash of the root's path>`` (``~/.local/state`` by
default), one folder per served root.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["service_state_dir"]


def service_state_dir(root: str | os.PathLike[str], kind: str) -> str:
    """The state folder of the ``kind`` service (``caldb``, ``attitude``) serving ``root``."""
    env = os.environ.get(f"MXT_{kind.upper()}_STATE_DIR")
    if env:
        return env
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "mxt"
    resolved = Path(root).resolve()
    key = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    return str(base / f"{kind}-{resolved.name}-{key}")
