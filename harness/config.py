"""The harness configuration: one YAML file with every tolerance and threshold.

``harness/config.yaml`` holds

* ``fitsdiff``: the keywords ignored because they change on every run (DATE, CREATOR,
  CHECKSUM, DATASUM, ...), the default tolerance of floating-point values, the tolerance
  of numeric header keywords, and tolerances per product / HDU / column;
* ``jsondiff``: the same for JSON products;
* ``localization`` and ``ensemble``: the thresholds of the science checks;
* ``coverage``: the floor (never lowered by the harness) and the largest drop allowed;
* ``timing``: the largest normalised slowdown allowed and the measurement rounds;
* ``golden``: the golden datasets (scenario, seed, pipeline) and the size budget.

Tolerances follow astropy's FITSDiff convention: a value ``a`` of the file under test
differs from the reference value ``b`` when ``|a - b| > atol + rtol * |b|``.

Resolution of a tolerance for (product CONTENT, EXTNAME, column): the most specific
entry of ``fitsdiff.products`` wins, the column name counting first, then the product,
then the HDU::

    (P, H, C) > (P, *, C) > (*, H, C) > (*, *, C) > (P, H, *) > (P, *, *) > (*, H, *)
    > (*, *, *) > fitsdiff.default

Integer, boolean and string columns are compared exactly unless an entry names the
column itself (e.g. ``PI: {atol: 1}``): a default meant for floats must not hide an
off-by-one in a channel number.
"""

from __future__ import annotations

import copy
import fnmatch
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "Tolerance",
    "ToleranceTable",
    "HarnessConfig",
    "load_config",
    "default_config_path",
    "repo_root",
]


def repo_root() -> Path:
    """The checkout holding ``harness/`` (golden/ and reports/ live beside it)."""
    env = os.environ.get("MXT_HARNESS_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def default_config_path() -> Path:
    """``harness/config.yaml`` of this checkout."""
    return Path(__file__).resolve().parent / "config.yaml"


@dataclass(frozen=True)
class Tolerance:
    """Relative and absolute tolerance: ``|a - b| <= atol + rtol * |b|`` passes."""

    rtol: float = 0.0
    atol: float = 0.0

    def __post_init__(self) -> None:
        if not (self.rtol >= 0 and self.atol >= 0):
            raise ValueError(f"tolerances must be >= 0 (rtol={self.rtol}, atol={self.atol})")

    @classmethod
    def from_any(cls, value: Any) -> Tolerance:
        """Build from a mapping ``{rtol:, atol:}``, a Tolerance or a number (rtol)."""
        if isinstance(value, Tolerance):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"rtol", "atol"}
            if unknown:
                raise ValueError(f"unknown tolerance keys {sorted(unknown)}")
            return cls(float(value.get("rtol", 0.0)), float(value.get("atol", 0.0)))
        return cls(float(value), 0.0)

    def __str__(self) -> str:
        return f"rtol={self.rtol:g} atol={self.atol:g}"


@dataclass
class ToleranceTable:
    """Tolerances by (product, HDU, column) with ``*`` wildcards; see module docstring."""

    default: Tolerance = field(default_factory=lambda: Tolerance(1e-5, 1e-7))
    keywords: Tolerance = field(default_factory=lambda: Tolerance(1e-12, 1e-9))
    #: content -> extname -> column -> Tolerance ("*" matches any)
    entries: dict[str, dict[str, dict[str, Tolerance]]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ToleranceTable:
        entries: dict[str, dict[str, dict[str, Tolerance]]] = {}
        for product, hdus in (data.get("products") or {}).items():
            for hdu, cols in (hdus or {}).items():
                for col, tol in (cols or {}).items():
                    entries.setdefault(str(product), {}).setdefault(str(hdu).upper(), {})[
                        str(col).upper()
                    ] = Tolerance.from_any(tol)
        return cls(
            default=Tolerance.from_any(data.get("default", {"rtol": 1e-5, "atol": 1e-7})),
            keywords=Tolerance.from_any(data.get("keywords", {"rtol": 1e-12, "atol": 1e-9})),
            entries=entries,
        )

    def _get(self, product: str, hdu: str, column: str) -> Tolerance | None:
        return self.entries.get(product, {}).get(hdu, {}).get(column)

    def resolve(self, product: str | None, hdu: str, column: str | None) -> tuple[Tolerance, bool]:
        """Return the tolerance of a column (or of an image when ``column`` is None).

        Returns
        -------
        (Tolerance, bool)
            The tolerance, and whether an entry named this column explicitly (only then
            are integer columns compared with a tolerance).
        """
        p = product or "*"
        h = hdu.upper()
        if column is not None:
            c = column.upper()
            for pp, hh in ((p, h), (p, "*"), ("*", h), ("*", "*")):
                tol = self._get(pp, hh, c)
                if tol is not None:
                    return tol, True
        for pp, hh in ((p, h), (p, "*"), ("*", h), ("*", "*")):
            tol = self._get(pp, hh, "*")
            if tol is not None:
                return tol, column is None
        return self.default, False


@dataclass
class HarnessConfig:
    """The parsed configuration file (sections kept as plain mappings where simple)."""

    path: Path
    raw: dict[str, Any]
    tolerances: ToleranceTable
    ignore_keywords: tuple[str, ...]
    ignore_hdus: tuple[str, ...]
    ignore_columns: tuple[str, ...]
    json_tolerance: Tolerance
    json_ignore_keys: tuple[str, ...]
    json_key_tolerances: dict[str, Tolerance]
    #: JSON keys whose string values (or lists of strings) are file paths compared by
    #: file name only: where a run reads its inputs from is not part of its result.
    json_path_keys: tuple[str, ...] = ()

    @property
    def localization(self) -> dict[str, Any]:
        return dict(self.raw.get("localization") or {})

    @property
    def ensemble(self) -> dict[str, Any]:
        return dict(self.raw.get("ensemble") or {})

    @property
    def coverage(self) -> dict[str, Any]:
        return dict(self.raw.get("coverage") or {})

    @property
    def timing(self) -> dict[str, Any]:
        return dict(self.raw.get("timing") or {})

    @property
    def golden(self) -> dict[str, Any]:
        return dict(self.raw.get("golden") or {})

    def keyword_ignored(self, keyword: str) -> bool:
        """True when ``keyword`` matches one of the ignored patterns (fnmatch, upper case)."""
        key = keyword.upper()
        return any(fnmatch.fnmatchcase(key, pat) for pat in self.ignore_keywords)

    def hdu_ignored(self, extname: str) -> bool:
        return any(fnmatch.fnmatchcase(extname.upper(), pat) for pat in self.ignore_hdus)

    def column_ignored(self, extname: str, column: str) -> bool:
        """``ignore_columns`` entries are ``EXTNAME.COLUMN`` patterns (``*.ELAPSED``)."""
        key = f"{extname.upper()}.{column.upper()}"
        return any(fnmatch.fnmatchcase(key, pat) for pat in self.ignore_columns)

    def with_overrides(self, **sections: Any) -> HarnessConfig:
        """A copy with whole sections of the raw mapping replaced or merged (for tests)."""
        raw = copy.deepcopy(self.raw)
        for name, value in sections.items():
            if isinstance(value, Mapping) and isinstance(raw.get(name), Mapping):
                raw[name] = _deep_merge(raw[name], value)
            else:
                raw[name] = value
        return from_mapping(raw, self.path)


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def from_mapping(raw: Mapping[str, Any], path: Path | None = None) -> HarnessConfig:
    """Build a :class:`HarnessConfig` from a mapping shaped like ``config.yaml``."""
    raw = dict(raw)
    fd = dict(raw.get("fitsdiff") or {})
    jd = dict(raw.get("jsondiff") or {})
    return HarnessConfig(
        path=Path(path) if path else default_config_path(),
        raw=raw,
        tolerances=ToleranceTable.from_mapping(fd),
        ignore_keywords=tuple(str(k).upper() for k in fd.get("ignore_keywords") or ()),
        ignore_hdus=tuple(str(k).upper() for k in fd.get("ignore_hdus") or ()),
        ignore_columns=tuple(str(k).upper() for k in fd.get("ignore_columns") or ()),
        json_tolerance=Tolerance.from_any(jd.get("default", {"rtol": 1e-9, "atol": 0.0})),
        json_ignore_keys=tuple(str(k) for k in jd.get("ignore_keys") or ()),
        json_key_tolerances={
            str(k): Tolerance.from_any(v) for k, v in (jd.get("keys") or {}).items()
        },
        json_path_keys=tuple(str(k) for k in jd.get("path_keys") or ()),
    )


def load_config(path: str | os.PathLike[str] | None = None) -> HarnessConfig:
    """Read the configuration file (default ``harness/config.yaml``).

    Raises
    ------
    ValueError
        When the file is not a YAML mapping or a tolerance is malformed.
    """
    path = Path(path) if path else default_config_path()
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: the harness configuration must be a YAML mapping")
    return from_mapping(raw, path)
