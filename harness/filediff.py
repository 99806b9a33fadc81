"""One entry point comparing a file with its reference, whatever its type.

FITS files (``.fits``, ``.fit``, ``.fts``, ``.indx``, ``.fits.gz``, or any file that
starts with ``SIMPLE  =``) go to :func:`harness.fitsdiff.diff_fits`, JSON files to
:func:`harness.jsondiff.diff_json`; anything else (text logs, PNG previews) is compared
by SHA-256 only.  :func:`compare_trees` compares two folders file by file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from harness.config import HarnessConfig, load_config
from harness.fitsdiff import Difference, FileDiff, diff_fits
from harness.jsondiff import diff_json
from mxt_pipeline.services.files import sha256_file

__all__ = ["compare_files", "compare_trees", "is_fits"]

_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".indx", ".fits.gz", ".evt", ".lc")


def is_fits(path: str | os.PathLike[str]) -> bool:
    """True for a FITS file, by suffix or by its first card."""
    name = str(path).lower()
    if name.endswith(_FITS_SUFFIXES):
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(9) == b"SIMPLE  ="
    except OSError:
        return False


def compare_files(
    test: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    config: HarnessConfig | None = None,
) -> FileDiff:
    """Compare ``test`` with ``reference`` with the comparison fitting the file type."""
    cfg = config or load_config()
    if is_fits(reference):
        return diff_fits(test, reference, cfg)
    if str(reference).lower().endswith(".json"):
        return diff_json(test, reference, cfg)
    result = FileDiff(str(test), str(reference), content="BYTES")
    try:
        same = sha256_file(test) == sha256_file(reference)
    except OSError as exc:
        result.differences.append(Difference("file", "", "", f"unreadable: {exc}"))
        return result
    if not same:
        result.differences.append(Difference("file", "", "", "contents differ (SHA-256)"))
    return result


def _files(root: Path, ignore: Iterable[str]) -> dict[str, Path]:
    skip = set(ignore)
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            if rel not in skip and not any(part.startswith(".") for part in p.relative_to(root).parts):
                out[rel] = p
    return out


def compare_trees(
    test_dir: str | os.PathLike[str],
    ref_dir: str | os.PathLike[str],
    config: HarnessConfig | None = None,
    *,
    ignore: Iterable[str] = (),
) -> dict[str, FileDiff]:
    """Compare two folders: one :class:`FileDiff` per relative path of either side.

    A file present on one side only is a ``file`` difference (``missing`` or ``not in
    the reference``). Hidden files and the relative paths in ``ignore`` are skipped.
    """
    cfg = config or load_config()
    test_dir, ref_dir = Path(test_dir), Path(ref_dir)
    ignore = tuple(ignore)
    tf, rf = _files(test_dir, ignore), _files(ref_dir, ignore)
    out: dict[str, FileDiff] = {}
    for rel, rpath in rf.items():
        if rel not in tf:
            d = FileDiff(str(test_dir / rel), str(rpath))
            d.differences.append(Difference("file", "", rel, "missing"))
            out[rel] = d
        else:
            out[rel] = compare_files(tf[rel], rpath, cfg)
    for rel, tpath in tf.items():
        if rel not in rf:
            d = FileDiff(str(tpath), str(ref_dir / rel))
            d.differences.append(Difference("file", "", rel, "not in the reference"))
            out[rel] = d
    return out
