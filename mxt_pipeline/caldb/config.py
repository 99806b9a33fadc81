"""The CALDB configuration file (``software/tools/caldb.config``).

HEASoft finds the index of a mission/instrument through this file: one line per
instrument, seven blank-separated fields::

    MISSION INSTRUMENT cifdev cifdir ciffile datadev datadir
    SVOM    MXT        CALDB  data/svom/mxt caldb.indx CALDB data/svom/mxt

``cifdev``/``datadev`` name a *device*: an environment variable (``CALDB``) whose value
is the CALDB root, or an absolute directory.  ``cifdir``/``datadir`` are relative to the
device.  Lines starting with ``#`` and blank lines are comments.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mxt_pipeline.errors import MXTCaldbError, MXTFormatError

__all__ = [
    "CaldbConfigEntry",
    "CONFIG_RELPATH",
    "config_path",
    "parse_config",
    "read_config",
    "format_config",
    "write_config",
    "update_config",
    "find_entry",
    "resolve_device",
]

#: Where the configuration file lives under a CALDB root.
CONFIG_RELPATH = "software/tools/caldb.config"

_HEADER = (
    "# HEASARC CALDB configuration: MISSION INSTRUMENT cifdev cifdir ciffile datadev datadir\n"
    "# A device is an environment variable holding the CALDB root (CALDB) or an absolute path.\n"
)


@dataclass(frozen=True)
class CaldbConfigEntry:
    """One ``caldb.config`` line."""

    mission: str
    instrument: str
    cif_device: str
    cif_dir: str
    cif_file: str
    data_device: str
    data_dir: str

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
                raise MXTFormatError(f"caldb.config field {name} {value!r} must be one word")
            if value.startswith("#"):
                raise MXTFormatError(f"caldb.config field {name} {value!r} cannot start with '#'")

    @classmethod
    def default(cls, mission: str, instrument: str, device: str = "CALDB") -> CaldbConfigEntry:
        """The standard line: index and data under ``data/<mission>/<instrument>``."""
        rel = f"data/{mission.lower()}/{instrument.lower()}"
        return cls(mission.upper(), instrument.upper(), device, rel, "caldb.indx", device, rel)

    def line(self) -> str:
        """The entry as one configuration line (no newline)."""
        return " ".join(
            (self.mission, self.instrument, self.cif_device, self.cif_dir, self.cif_file,
             self.data_device, self.data_dir)
        )  # fmt: skip

    def cif_path(self, devices: Mapping[str, str | os.PathLike[str]] | None = None) -> Path:
        """Absolute path of the index file, expanding the device."""
        return resolve_device(self.cif_device, devices) / self.cif_dir / self.cif_file

    def data_path(self, devices: Mapping[str, str | os.PathLike[str]] | None = None) -> Path:
        """Absolute path of the data directory, expanding the device."""
        return resolve_device(self.data_device, devices) / self.data_dir


def resolve_device(
    device: str, devices: Mapping[str, str | os.PathLike[str]] | None = None
) -> Path:
    """Expand a configuration device to a directory.

    Parameters
    ----------
    device : str
        ``CALDB`` (an environment variable name) or an absolute path.
    devices : mapping, optional
        Explicit device values; they win over the environment (a client pointed at a
        CALDB root maps ``CALDB`` to it).

    Raises
    ------
    MXTCaldbError
        When the device is neither given, nor set in the environment, nor absolute.
    """
    if devices and device in devices:
        return Path(devices[device])
    value = os.environ.get(device)
    if value:
        return Path(value)
    if os.path.isabs(device):
        return Path(device)
    raise MXTCaldbError(
        f"caldb.config device {device!r} is neither a set environment variable nor an absolute path"
    )


def parse_config(text: str, source: str | os.PathLike[str] | None = None) -> list[CaldbConfigEntry]:
    """Parse the text of a ``caldb.config`` file.

    Raises
    ------
    MXTFormatError
        Naming the line that does not have seven fields.
    """
    entries = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 7:
            raise MXTFormatError(
                f"line {lineno}: {len(parts)} fields where 7 are expected "
                "(MISSION INSTRUMENT cifdev cifdir ciffile datadev datadir)",
                file=source,
            )
        try:
            entries.append(CaldbConfigEntry(*parts))
        except MXTFormatError as exc:
            raise MXTFormatError(f"line {lineno}: {exc.message}", file=source) from None
    return entries


def config_path(caldb_root: str | os.PathLike[str]) -> Path:
    """``<root>/software/tools/caldb.config``."""
    return Path(caldb_root) / CONFIG_RELPATH


def read_config(path: str | os.PathLike[str]) -> list[CaldbConfigEntry]:
    """Read a ``caldb.config`` file (MXTFormatError when missing or malformed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise MXTFormatError("caldb.config not found", file=path) from None
    except UnicodeDecodeError:
        raise MXTFormatError("caldb.config is not ASCII text", file=path) from None
    return parse_config(text, source=path)


def format_config(entries: Iterable[CaldbConfigEntry]) -> str:
    """The file text for ``entries`` (with a comment header)."""
    return _HEADER + "".join(e.line() + "\n" for e in entries)


def write_config(entries: Iterable[CaldbConfigEntry], path: str | os.PathLike[str]) -> Path:
    """Write a ``caldb.config`` atomically."""
    from mxt_pipeline.io.fits import atomic_write_bytes

    return atomic_write_bytes(path, format_config(entries).encode("ascii"))


def find_entry(
    entries: Iterable[CaldbConfigEntry], mission: str, instrument: str
) -> CaldbConfigEntry | None:
    """The entry of ``mission``/``instrument`` (case-insensitive), or None."""
    for e in entries:
        if e.mission.upper() == mission.upper() and e.instrument.upper() == instrument.upper():
            return e
    return None


def update_config(path: str | os.PathLike[str], entry: CaldbConfigEntry) -> Path:
    """Add ``entry`` to the file, replacing the line of the same mission/instrument.

    Other lines are kept in order; the file is created when missing.
    """
    path = Path(path)
    entries = read_config(path) if path.exists() else []
    out = [e for e in entries if find_entry([e], entry.mission, entry.instrument) is None]
    out.append(entry)
    out.sort(key=lambda e: (e.mission, e.instrument))
    return write_config(out, path)
