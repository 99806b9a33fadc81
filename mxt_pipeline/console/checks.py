"""Validation and fitsverify state of a collection's products, cached by checksum.

A published product never changes (its SHA-256 is in the manifest), so each check
runs once per file content and is remembered for the life of the console.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from mxt_pipeline.errors import MXTError
from mxt_pipeline.io.fitsverify import fitsverify_available, run_fitsverify
from mxt_pipeline.io.validate import validate_file

__all__ = ["CheckState", "ProductChecks"]


@dataclass(frozen=True)
class CheckState:
    """``ok``, ``fail`` or ``n/a``, with a short detail."""

    state: str
    detail: str = ""


def _describe(v) -> str:
    """A violation without the file's path (the page shows the file name beside it)."""
    where = f"[{v.hdu}]" if v.hdu is not None else ""
    what = f" column {v.column}" if v.column else (f" keyword {v.keyword}" if v.keyword else "")
    return f"{where}{what}: {v.message}".lstrip(": ")


class ProductChecks:
    """``mxt validate`` and ``fitsverify`` of FITS products, memoised by SHA-256."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], CheckState] = {}
        self._lock = threading.Lock()

    def _memo(self, kind: str, sha: str, fn) -> CheckState:
        with self._lock:
            hit = self._cache.get((kind, sha))
        if hit is None:
            hit = fn()
            with self._lock:
                self._cache[(kind, sha)] = hit
        return hit

    def validation(self, path: Path, sha: str) -> CheckState:
        if path.suffix.lower() not in (".fits", ".arf", ".rmf", ".lc"):
            return CheckState("n/a")

        def run() -> CheckState:
            try:
                v = validate_file(path)
            except MXTError as exc:  # not a registered product type, for one
                return CheckState("n/a", str(exc.message if hasattr(exc, "message") else exc))
            if not v:
                return CheckState("ok", "schema valid")
            return CheckState("fail", f"{len(v)} violation(s): " + "; ".join(_describe(x) for x in v[:3]))

        return self._memo("validate", sha, run)

    def fitsverify(self, path: Path, sha: str) -> CheckState:
        if path.suffix.lower() not in (".fits", ".arf", ".rmf", ".lc"):
            return CheckState("n/a")

        def run() -> CheckState:
            if not fitsverify_available():
                return CheckState("n/a", "fitsverify is not installed")
            try:
                r = run_fitsverify(path)
            except (OSError, RuntimeError) as exc:
                return CheckState("fail", f"{type(exc).__name__}")
            return CheckState("ok" if r.ok else "fail", f"{r.errors} error(s), {r.warnings} warning(s)")

        return self._memo("fitsverify", sha, run)
