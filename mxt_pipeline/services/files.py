"""Safe local file handling for downloads: names, checksums, atomic placement.

A file name coming from a server (a search result, a ``Content-Disposition`` header)
is untrusted.  :func:`safe_filename` reduces it to a bare file name and refuses any
name that could reach outside the download folder; :func:`target_in` then checks the
final path really is a direct child of that folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from mxt_pipeline.errors import MXTServiceError

log = logging.getLogger(__name__)

__all__ = [
    "safe_filename",
    "move_into_place",
    "target_in",
    "sha256_file",
    "cached_file",
    "partial_file",
    "remove_stale_parts",
    "MAX_NAME_LENGTH",
]

#: Permissions of downloaded files (read for all, write for the owner).
FILE_MODE = 0o644
#: Longest accepted file name (bytes in UTF-8; the usual filesystem limit).
MAX_NAME_LENGTH = 255

_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def safe_filename(name: str | None) -> str:
    """Return ``name`` reduced to a safe bare file name, or raise.

    Directory parts that stay inside (``sub/file.fits``) are dropped, keeping the base
    name.  Refused, with :class:`~mxt_pipeline.errors.MXTServiceError`: empty names,
    absolute paths (``/x``, ``\\\\x``, ``C:x``), any ``..`` component, ``.``, names
    starting with a dot (hidden files, and the temporary files of this module),
    control characters and names longer than 255 bytes.
    """
    if not isinstance(name, str) or not name.strip():
        raise MXTServiceError("the server sent an empty file name")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise MXTServiceError(f"the server sent a file name with control characters: {name!r}")
    unified = name.replace("\\", "/")
    if unified.startswith("/") or _DRIVE_RE.match(unified):
        raise MXTServiceError(f"the server sent an absolute file name {name!r}")
    parts = unified.split("/")
    if ".." in parts:
        raise MXTServiceError(f"the server sent a file name with '..': {name!r}")
    base = parts[-1].strip()
    if base in ("", ".") or base.startswith("."):
        raise MXTServiceError(f"the server sent an unusable file name {name!r}")
    if len(base.encode("utf-8")) > MAX_NAME_LENGTH:
        raise MXTServiceError(f"the server sent a file name longer than {MAX_NAME_LENGTH} bytes")
    return base


def target_in(folder: str | os.PathLike[str], name: str) -> Path:
    """Return ``folder/safe_filename(name)``, checked to be a direct child of ``folder``."""
    base = safe_filename(name)
    folder = Path(folder)
    target = folder / base
    if os.path.realpath(target.parent) != os.path.realpath(folder):
        raise MXTServiceError(f"file name {name!r} resolves outside the download folder")
    return target


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def cached_file(target: Path, sha256: str | None) -> bool:
    """True when ``target`` is a regular file whose SHA-256 is ``sha256``."""
    if sha256 is None or target.is_symlink() or not target.is_file():
        return False
    return sha256_file(target) == sha256.lower()


@contextlib.contextmanager
def partial_file(target: Path) -> Iterator[tuple[Path, object]]:
    """Yield ``(temp_path, binary file)`` beside ``target``; rename over it on success.

    The temporary file is hidden (leading dot) in the same folder, so the final
    ``os.replace`` is atomic; on any error it is removed and ``target`` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp_path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield tmp_path, fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600 files; a calibration file is not private.
        os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def remove_stale_parts(folder: str | os.PathLike[str], max_age_s: float, now: float | None = None) -> list[Path]:
    """Remove the hidden partial files (``.*.part``) of ``folder`` older than ``max_age_s``.

    :func:`partial_file` removes its file on any error, but not when the process is
    killed; such files are never renamed into place and would stay for ever.  Only
    files older than every live download could be (the caller passes more than its
    overall download deadline) are removed, so a concurrent download is not broken.
    Returns the removed paths.
    """
    now = time.time() if now is None else now
    removed = []
    try:
        candidates = list(Path(folder).glob(".*.part"))
    except OSError:
        return removed
    for p in candidates:
        try:
            if p.is_symlink() or not p.is_file() or now - p.stat().st_mtime <= max_age_s:
                continue
            p.unlink()
        except OSError:
            continue
        removed.append(p)
        log.info("removed %s, left by an interrupted download", p.name)
    return removed


def move_into_place(staged: str | os.PathLike[str], final: Path) -> None:
    """Rename ``staged`` to ``final``; across file systems (a state folder outside the
    root), copy to a temporary file beside ``final`` first so the last step is still an
    atomic rename."""
    try:
        os.replace(staged, final)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(staged, "rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.unlink(staged)
