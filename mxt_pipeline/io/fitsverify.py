"""Run HEASARC ``fitsverify`` on a file and parse its verdict.

fitsverify checks the FITS standard itself (keyword order and types, column widths,
TNULL, heap); ``mxt validate`` checks the OGIP and MXT rules on top.  Both must pass
for every product the project writes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

__all__ = ["FitsverifyResult", "fitsverify_available", "run_fitsverify"]

_SUMMARY = re.compile(r"Verification found (\d+) warning\(s\) and (\d+) error\(s\)")
_ONE_LINE = re.compile(r"(\d+) warnings and (\d+) errors")


@dataclass(frozen=True)
class FitsverifyResult:
    """Counts of errors and warnings, and the full report."""

    path: str
    errors: int
    warnings: int
    output: str

    @property
    def ok(self) -> bool:
        return self.errors == 0


def fitsverify_available() -> bool:
    """True when the ``fitsverify`` program is on PATH."""
    return shutil.which("fitsverify") is not None


def run_fitsverify(path: str | os.PathLike[str]) -> FitsverifyResult:
    """Run ``fitsverify -e`` (errors and warnings, HEASARC conventions) on ``path``.

    Raises
    ------
    FileNotFoundError
        When fitsverify is not installed.
    RuntimeError
        When its output cannot be parsed.
    """
    exe = shutil.which("fitsverify")
    if exe is None:
        raise FileNotFoundError("fitsverify is not installed (Debian package 'fitsverify')")
    proc = subprocess.run([exe, "-e", str(path)], capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    m = _SUMMARY.search(out)
    if m is not None:
        return FitsverifyResult(str(path), int(m.group(2)), int(m.group(1)), out)
    m = _ONE_LINE.search(out)
    if m is not None:
        return FitsverifyResult(str(path), int(m.group(2)), int(m.group(1)), out)
    if "Fatal Error" in out or proc.returncode != 0:
        return FitsverifyResult(str(path), 1, 0, out)
    raise RuntimeError(f"unexpected fitsverify output for {path}:\n{out}")
