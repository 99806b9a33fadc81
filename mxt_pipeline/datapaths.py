"""Where the package finds data it does not ship: real Swift-XRT light curves.

The real light curves are never copied into the project.  They are looked up, in
order, from an explicit argument, the ``MXT_SWIFT_XRT_DATA`` environment variable, and
the ``shared/data`` folder that sits beside a development checkout.  On a machine
without any of them the callers fall back to analytic models.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "swift_xrt_dir", "swift_xrt_dir_of", "bundled_caldb_dir", "golden_dir"]

#: Root of the source checkout (the folder holding ``pyproject.toml``).
REPO_ROOT = Path(__file__).resolve().parent.parent

_SWIFT_SUBDIR = "swift-xrt-grb-lightcurves"


def swift_xrt_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the folder of the Swift-XRT GRB light curves, or None when absent.

    Parameters
    ----------
    explicit : path-like, optional
        A folder given by the user (command-line option); it wins when it exists.

    Returns
    -------
    pathlib.Path or None
        A folder holding ``GRBtable.csv`` and the ``PC``/``WT`` sub-folders.
    """
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit))
    env = os.environ.get("MXT_SWIFT_XRT_DATA")
    if env:
        candidates.append(Path(env))
    candidates.append(REPO_ROOT.parent / "shared" / "data" / _SWIFT_SUBDIR)
    for cand in candidates:
        found = swift_xrt_dir_of(cand)
        if found is not None:
            return found
    return None


def swift_xrt_dir_of(folder: str | os.PathLike[str]) -> Path | None:
    """The Swift-XRT light-curve folder at or just below ``folder`` (None when it holds none)."""
    cand = Path(folder)
    if (cand / "PC").is_dir():
        return cand
    if (cand / _SWIFT_SUBDIR / "PC").is_dir():
        return cand / _SWIFT_SUBDIR
    return None


def bundled_caldb_dir() -> Path:
    """Return the bundled synthetic CALDB (``fixtures_caldb/``)."""
    return REPO_ROOT / "fixtures_caldb"


def golden_dir() -> Path:
    """Return the folder of the golden regression datasets (``golden/``)."""
    return REPO_ROOT / "golden"
