"""The ``upload`` product class: YAML files uploaded to the satellite.

Configuration files sent to the spacecraft (on-board thresholds, tables) are kept in
the CALDB so that the ground knows from when each applies.  As in the FSC CalDB
(seed presentation, KP-3 ObAS), the indexing data are coded in the file name and the
type is forced to ``onboard``.

Naming rule::

    <INSTRUMENT>_<CODENAME>_<YYYYMMDDTHHMMSS>_v<NN>.yaml

* ``INSTRUMENT``: a storage node, ``MXT``, ``ECL`` or ``VT``;
* ``CODENAME``: upper-case letters, digits and single underscores, starting with a
  letter (the CIF code name, at most 20 characters);
* ``YYYYMMDDTHHMMSS``: UTC date and time from which the file applies on board;
* ``vNN``: version, two digits or more, at least 1; a higher version with the same
  code name and validity start supersedes the lower one (CAL_QUAL 5);
* the whole name fits the CIF's CAL_FILE column (40 characters).

Example: ``MXT_EVTTHR_20250301T120000_v02.yaml``.  The content must be one YAML
document whose top level is a non-empty mapping.

In the calibration index such a file is one row with ``CAL_XNO = -1`` (not a FITS
HDU), ``CAL_CLAS = 'BCF'`` and ``CAL_DTYP = 'DATA'`` (the OGIP values; the index has
no room for ``onboard``, which the service keeps in its database and reports), and
lives under ``data/svom/<inst>/upload/<codename>/``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mxt_pipeline.caldb.service.nodes import NODES, TELESCOP
from mxt_pipeline.errors import MXTInputError

__all__ = [
    "UPLOAD_NAME_RULE",
    "UPLOAD_CLASS",
    "UPLOAD_TYPE",
    "UploadName",
    "parse_upload_name",
    "parse_upload_yaml",
    "upload_cal_dir",
    "is_upload_name",
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
]

#: The naming rule, as shown in error messages.
UPLOAD_NAME_RULE = "<INSTRUMENT>_<CODENAME>_<YYYYMMDDTHHMMSS>_v<NN>.yaml"
#: Product class and forced type of the uploaded YAML files.
UPLOAD_CLASS = "upload"
UPLOAD_TYPE = "onboard"
#: Longest file name (the CIF CAL_FILE column is 40A).
MAX_UPLOAD_NAME = 40
#: Limits of an upload-class YAML document: size (bytes), nesting depth, number of
#: nodes (scalars, mappings, sequences).  On-board configuration files are a few kB
#: and a few levels deep; the limits keep one upload from costing the service more
#: than a few tens of MB of memory or a second of parsing.
MAX_YAML_BYTES = 1024 * 1024
MAX_YAML_DEPTH = 32
MAX_YAML_NODES = 100_000

_STEM_RE = re.compile(r"^(?P<inst>[^_]+)_(?P<code>.+)_(?P<stamp>[^_]+)_(?P<ver>[^_]+)$")
_CODE_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
_STAMP_RE = re.compile(r"^\d{8}T\d{6}$")
_VER_RE = re.compile(r"^v(\d{2,})$")


def is_upload_name(name: str) -> bool:
    """True for names with a YAML extension (``.yaml``/``.yml``, any case)."""
    return name.lower().endswith((".yaml", ".yml"))


@dataclass(frozen=True)
class UploadName:
    """What an upload file name says."""

    filename: str
    instrument: str
    codename: str
    valid_from: datetime
    version: int

    @property
    def cal_vsd(self) -> str:
        return self.valid_from.strftime("%Y-%m-%d")

    @property
    def cal_vst(self) -> str:
        return self.valid_from.strftime("%H:%M:%S")


def _bad(name: str, problem: str) -> MXTInputError:
    return MXTInputError(f"upload file name {name!r}: {problem} (rule: {UPLOAD_NAME_RULE})")


def parse_upload_name(name: str) -> UploadName:
    """Parse an upload file name; raise naming the first problem found.

    Raises
    ------
    MXTInputError
        For a name that breaks the rule; the message says which part is wrong.
    """
    if not isinstance(name, str) or not name:
        raise _bad(str(name), "empty name")
    if "/" in name or "\\" in name:
        raise _bad(name, "must be a bare file name, without directories")
    if not name.endswith(".yaml"):
        raise _bad(name, "must end with '.yaml'")
    if len(name) > MAX_UPLOAD_NAME:
        raise _bad(name, f"{len(name)} characters, at most {MAX_UPLOAD_NAME} fit the index")
    stem = name[: -len(".yaml")]
    m = _STEM_RE.match(stem)
    if m is None:
        raise _bad(name, "expected four fields separated by '_'")
    inst, code, stamp, ver = m.group("inst", "code", "stamp", "ver")
    if inst not in NODES:
        raise _bad(name, f"unknown instrument {inst!r} (one of {', '.join(NODES)})")
    if not _CODE_RE.match(code) or len(code) > 20:
        raise _bad(
            name,
            f"code name {code!r} must be upper-case letters, digits and single underscores, "
            "starting with a letter, at most 20 characters",
        )
    if not _STAMP_RE.match(stamp):
        raise _bad(name, f"validity start {stamp!r} is not YYYYMMDDTHHMMSS")
    try:
        valid_from = datetime.strptime(stamp, "%Y%m%dT%H%M%S")
    except ValueError:
        raise _bad(name, f"validity start {stamp!r} is not a valid date and time") from None
    vm = _VER_RE.match(ver)
    if vm is None:
        raise _bad(name, f"version {ver!r} is not v<NN> (two digits or more)")
    version = int(vm.group(1))
    if version < 1:
        raise _bad(name, "version must be at least v01")
    return UploadName(name, inst, code, valid_from, version)


def parse_upload_yaml(data: bytes, name: str) -> Mapping[str, Any]:
    """Check and parse the YAML content of an upload.

    Raises
    ------
    MXTInputError
        Larger than :data:`MAX_YAML_BYTES`, nested deeper than
        :data:`MAX_YAML_DEPTH`, more than :data:`MAX_YAML_NODES` nodes, aliases, not
        UTF-8, not YAML (with the line and column of the error), several documents,
        or a top level that is not a non-empty mapping.
    """
    import yaml

    if len(data) > MAX_YAML_BYTES:
        raise MXTInputError(f"{name}: {len(data)} bytes, an upload-class YAML file holds at most {MAX_YAML_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MXTInputError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        # A streaming pass over the parser events first: it holds one event at a time,
        # so nesting depth, node count and aliases are refused before any object is
        # built (deep nesting would exhaust the recursion of the constructor, aliases
        # can multiply a small document into a huge one).
        depth = nodes = 0
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent):
                raise MXTInputError(f"{name}: YAML aliases (*name) are not accepted in upload files")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise MXTInputError(f"{name}: YAML nested deeper than {MAX_YAML_DEPTH} levels")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            if isinstance(event, (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                nodes += 1
                if nodes > MAX_YAML_NODES:
                    raise MXTInputError(f"{name}: more than {MAX_YAML_NODES} YAML nodes")
        content = yaml.load(text, Loader=loader)  # CSafeLoader or SafeLoader: no object tags
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        if "nesting depth" in str(problem):
            # Recent PyYAML scanners refuse deep flow nesting before emitting its events.
            raise MXTInputError(f"{name}: YAML nested deeper than {MAX_YAML_DEPTH} levels{where}") from None
        raise MXTInputError(f"{name}: malformed YAML{where}: {problem}") from None
    if not isinstance(content, Mapping):
        found = "nothing" if content is None else type(content).__name__
        raise MXTInputError(f"{name}: the YAML top level must be a mapping, found {found}")
    if not content:
        raise MXTInputError(f"{name}: the YAML mapping is empty")
    return content


def upload_cal_dir(instrument: str, codename: str, telescop: str = TELESCOP) -> str:
    """CAL_DIR of an upload: ``data/svom/<inst>/upload/<codename>``."""
    return f"data/{telescop.lower()}/{instrument.lower()}/upload/{codename.lower()}"
