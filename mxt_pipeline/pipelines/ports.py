"""Inputs and outputs of bricks: ports, codecs and file records with checksums.

A :class:`Port` names one piece of data a brick reads or writes (``events``,
``srclist``, ...) and carries a :class:`Codec`: how that data is written to a file
and read back.  The codec is the brick's thin I/O shell; the brick's core only ever
sees in-memory objects.  A codec without a writer is *memory only* (e.g. the loaded
calibration passes between two bricks of one run).

A *many* codec holds a mapping ``key -> object`` (one light curve per source) and
writes one file per key, the key substituted in its file-name pattern.

Every file read or written by a run is described by a :class:`FileRecord` with its
SHA-256, so the run report and the collection manifest say exactly which bytes went
in and came out.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mxt_pipeline.errors import MXTPipelineError
from mxt_pipeline.io.fits import atomic_write_bytes
from mxt_pipeline.services.files import sha256_file

__all__ = [
    "Codec",
    "Port",
    "FileRecord",
    "file_record",
    "MEMORY",
    "json_codec",
    "text_codec",
    "json_bytes",
    "write_json",
]

Writer = Callable[[Path, Any, Mapping[str, Any]], None]
Reader = Callable[[Path], Any]


@dataclass(frozen=True)
class Codec:
    """How one kind of brick data goes to and from files.

    Parameters
    ----------
    name : str
        Kind of data: a product CONTENT (``MXT_L2_EVT``), ``json``, ``png``, ``memory``.
    pattern : str, optional
        File-name pattern with ``{obs_id}`` (and ``{key}`` for many codecs); None for
        memory-only data.
    write : callable, optional
        ``write(path, value, naming)``; must write atomically (the io layer does).
    read : callable, optional
        ``read(path) -> value``.
    many : bool
        The value is a mapping ``key -> object``, one file per key.
    role : str
        ``product`` (science product of the collection), ``report``, ``preview`` or
        ``aux``: how the manifest classifies the files.
    fits : bool
        Files are FITS products (checked with ``mxt validate`` and ``fitsverify``).
    """

    name: str
    pattern: str | None = None
    write: Writer | None = None
    read: Reader | None = None
    many: bool = False
    role: str = "product"
    fits: bool = False

    def __post_init__(self) -> None:
        if (self.pattern is None) != (self.write is None):
            raise ValueError(f"codec {self.name}: a pattern needs a writer and a writer a pattern")
        if self.many and self.pattern is not None and "{key}" not in self.pattern:
            raise ValueError(f"codec {self.name}: a many codec's pattern needs {{key}}")

    @property
    def persistent(self) -> bool:
        """True when values are written to files."""
        return self.write is not None

    def filename(self, naming: Mapping[str, Any], key: str | None = None) -> str:
        """The file name of a value (or of one key of a many value)."""
        if self.pattern is None:
            raise MXTPipelineError(f"{self.name} data are not written to files")
        fields = {k: _safe_part(str(v)) for k, v in naming.items()}
        if key is not None:
            fields["key"] = _safe_part(str(key))
        try:
            return self.pattern.format(**fields)
        except KeyError as exc:
            raise MXTPipelineError(f"codec {self.name}: no value for {{{exc.args[0]}}} in the file name") from None


def _safe_part(text: str) -> str:
    """A file-name-safe form of an identifier (no separators, no leading dot)."""
    out = "".join(ch if (ch.isalnum() or ch in "-_+.") else "_" for ch in text).lstrip(".")
    return out or "_"


@dataclass(frozen=True)
class Port:
    """A named input or output of a brick.

    Parameters
    ----------
    name : str
        Key of the data in the run context (shared by the brick that writes it and the
        bricks that read it).
    codec : Codec
    doc : str
        What the data are.
    optional : bool
        Input: the brick runs without it (the core gets None).  Output: the core may
        return None (nothing written).
    """

    name: str
    codec: Codec
    doc: str
    optional: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.codec.name,
            "file": self.codec.pattern,
            "many": self.codec.many,
            "optional": self.optional,
            "doc": self.doc,
        }


@dataclass(frozen=True)
class FileRecord:
    """A file read or written by a run.

    ``path`` is relative to the collection for products, absolute for inputs.
    """

    port: str
    path: str
    sha256: str
    size: int
    key: str | None = None
    kind: str = ""
    role: str = "product"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "port": self.port,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "kind": self.kind,
            "role": self.role,
        }
        if self.key is not None:
            out["key"] = self.key
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FileRecord:
        base = {"port", "path", "sha256", "size", "key", "kind", "role"}
        return cls(
            port=d["port"],
            path=d["path"],
            sha256=d["sha256"],
            size=int(d["size"]),
            key=d.get("key"),
            kind=d.get("kind", ""),
            role=d.get("role", "product"),
            extra={k: v for k, v in d.items() if k not in base},
        )


def file_record(
    port: str,
    path: str | os.PathLike[str],
    *,
    relative_to: str | os.PathLike[str] | None = None,
    key: str | None = None,
    kind: str = "",
    role: str = "product",
    known: Mapping[str, tuple[str, int]] | None = None,
) -> FileRecord:
    """Hash a file and describe it (path relative to ``relative_to`` when given).

    ``known`` maps absolute paths already hashed in this run to their (SHA-256, size),
    so that a run hashes each input once.
    """
    p = Path(path)
    shown = str(p.relative_to(relative_to)) if relative_to is not None else str(p.resolve())
    if known is not None and relative_to is None and shown in known:
        digest, size = known[shown]
        return FileRecord(port, shown, digest, size, key=key, kind=kind or ("folder" if p.is_dir() else ""), role=role)
    if p.is_dir():
        digest, size = tree_sha256(p)
        return FileRecord(port, shown, digest, size, key=key, kind=kind or "folder", role=role)
    return FileRecord(port, shown, sha256_file(p), p.stat().st_size, key=key, kind=kind, role=role)


def tree_sha256(folder: str | os.PathLike[str]) -> tuple[str, int]:
    """SHA-256 of a folder's content (relative paths and file checksums) and its byte size."""
    root = Path(folder)
    h = hashlib.sha256()
    size = 0
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(f"{p.relative_to(root).as_posix()}\0{sha256_file(p)}\n".encode())
            size += p.stat().st_size
    return h.hexdigest(), size


# --------------------------------------------------------------------------------------
# Generic codecs
# --------------------------------------------------------------------------------------


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and paths for ``json.dumps``; NaN becomes null."""
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def json_bytes(obj: Any) -> bytes:
    """Canonical JSON (sorted keys, 2-space indent, NaN as null, trailing newline)."""
    return (json.dumps(_jsonable(obj), indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as canonical JSON, atomically."""
    return atomic_write_bytes(path, json_bytes(obj))


def _write_json(path: Path, value: Any, naming: Mapping[str, Any]) -> None:
    write_json(path, value)


def _read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _write_text(path: Path, value: Any, naming: Mapping[str, Any]) -> None:
    atomic_write_bytes(path, str(value).encode("utf-8"))


def _read_text(path: Path) -> str:
    return Path(path).read_text(encoding="utf-8")


#: Data passed between bricks in memory only (never written).
MEMORY = Codec("memory")


def json_codec(pattern: str, role: str = "report", many: bool = False) -> Codec:
    """A codec writing a JSON document per value."""
    return Codec("json", pattern, _write_json, _read_json, many=many, role=role)


def text_codec(pattern: str, role: str = "aux", many: bool = False) -> Codec:
    """A codec writing a UTF-8 text file per value."""
    return Codec("text", pattern, _write_text, _read_text, many=many, role=role)
