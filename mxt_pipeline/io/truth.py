"""``truth.json``: everything a simulated dataset was made from, and its validator.

The simulation bench writes one ``truth.json`` per dataset (``docs/simulation.md``).
It holds every input - pointing, orbit, sources with positions, fluxes, spectra and
time profiles (a Swift-XRT template inline, so no real data are needed to replay it),
background, detector settings, passes, seed, the CALDB files used and the software
version - and a few derived figures per source (expected and simulated photon numbers,
off-axis angle, whether it is in the field) that the comparison tools use.

Schema (version 1); ``?`` marks optional keys, ``|null`` nullable values::

    schema            "mxt-sim-truth"
    schema_version    1
    software          {name: str, version: str}
    seed              int >= 0
    obs_id            str
    object            str
    tstart, tstop     float (s, mission time), tstop > tstart
    trigger_time      float|null
    pointing          {ra, dec, roll, jitter_arcsec, jitter_tau_s: float, slew: object|null}
    orbit             {altitude_km, inclination_deg, raan_deg, arg_lat_deg, epoch: float}
    saa_region        {lon0, lat0, semi_lon, semi_lat: float}
    sources           list of {name: str, ra, dec, flux: float, flux_band: [lo, hi],
                                spectrum: {model: str, ...}, profile: {model: str, ...},
                                in_fov: bool, detectable: bool, offaxis_arcmin: float,
                                expected_photons, photons_on_detector,
                                photons_detected: number,
                                photons_detected_bands?: {"0.2-2": int, "2-10": int}
                                (detected photons per detection band of true energy)}
    background        {cxb: object|null, particle: object|null, calibration: object|null}
    detector          object
    passes            list of {pass_id: int, station: str, start, stop: float,
                                lost: list, truncate_last_frame: bool}
    bad_time          {saa: list of [a, b], earth: list of [a, b], telemetry: list of [a, b]}
    caldb             {root: str|null, date: str, files: {CODE: str}}
    counts            {hits: int, frames: int, hits_per_pass: {str: int}}
    scenario          object (the scenario as run)
    files?            object (the dataset manifest's file lists)

:func:`validate_truth` checks the whole document and raises
:class:`~mxt_pipeline.errors.MXTFormatError` naming the first offending key as a
dotted path (``sources[1].spectrum.model``) in ``keyword``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mxt_pipeline.errors import MXTFormatError

__all__ = ["TRUTH_SCHEMA", "TRUTH_SCHEMA_VERSION", "validate_truth", "read_truth", "write_truth"]

TRUTH_SCHEMA = "mxt-sim-truth"
TRUTH_SCHEMA_VERSION = 1

# A tiny declarative schema: a type name, or a dict of keys (a key ending in '?' is
# optional), or ("list", item_schema), or ("nullable", schema), or ("map", value_schema).
_NUM = "number"
_INTERVALS = ("list", ("list", _NUM))

_SOURCE = {
    "name": "str",
    "ra": _NUM,
    "dec": _NUM,
    "flux": _NUM,
    "flux_band": ("list", _NUM),
    "spectrum": {"model": "str", "*": "any"},
    "profile": {"model": "str", "*": "any"},
    "in_fov": "bool",
    "detectable": "bool",
    "offaxis_arcmin": _NUM,
    "expected_photons": _NUM,
    "photons_on_detector": _NUM,
    "photons_detected": _NUM,
    "*": "any",
}

_SCHEMA: dict[str, Any] = {
    "schema": "str",
    "schema_version": "int",
    "software": {"name": "str", "version": "str"},
    "seed": "int",
    "obs_id": "str",
    "object": "str",
    "tstart": _NUM,
    "tstop": _NUM,
    "trigger_time": ("nullable", _NUM),
    "pointing": {
        "ra": _NUM,
        "dec": _NUM,
        "roll": _NUM,
        "jitter_arcsec": _NUM,
        "jitter_tau_s": _NUM,
        "slew": ("nullable", {"ra": _NUM, "dec": _NUM, "roll": _NUM, "rate_deg_s": _NUM}),
    },
    "orbit": {"altitude_km": _NUM, "inclination_deg": _NUM, "raan_deg": _NUM, "arg_lat_deg": _NUM, "epoch": _NUM},
    "saa_region": {"lon0": _NUM, "lat0": _NUM, "semi_lon": _NUM, "semi_lat": _NUM},
    "sources": ("list", _SOURCE),
    "background": {"cxb": ("nullable", "object"), "particle": ("nullable", "object"),
                   "calibration": ("nullable", "object")},  # fmt: skip
    "detector": "object",
    "passes": (
        "list",
        {"pass_id": "int", "station": "str", "start": _NUM, "stop": _NUM, "lost": _INTERVALS,
         "truncate_last_frame": "bool"},  # fmt: skip
    ),
    "bad_time": {"saa": _INTERVALS, "earth": _INTERVALS, "telemetry": _INTERVALS},
    "caldb": {"root": ("nullable", "str"), "date": "str", "files": ("map", "str")},
    "counts": {"hits": "int", "frames": "int", "hits_per_pass": ("map", "int")},
    "scenario": "object",
    "files?": "object",
}

TRUTH_SCHEMA_DOC = _SCHEMA


def _fail(msg: str, path: str, file: str | None) -> None:
    raise MXTFormatError(f"truth: {path or '<root>'}: {msg}", file=file, keyword=path or None)


def _check(value: Any, schema: Any, path: str, file: str | None) -> None:
    if isinstance(schema, tuple):
        kind, inner = schema
        if kind == "nullable":
            if value is not None:
                _check(value, inner, path, file)
            return
        if kind == "list":
            if not isinstance(value, list):
                _fail(f"expected a list, got {type(value).__name__}", path, file)
            for i, item in enumerate(value):
                _check(item, inner, f"{path}[{i}]", file)
            return
        if kind == "map":
            if not isinstance(value, Mapping):
                _fail(f"expected an object, got {type(value).__name__}", path, file)
            for k, v in value.items():
                _check(v, inner, f"{path}.{k}", file)
            return
        raise ValueError(kind)  # pragma: no cover - schema bug
    if isinstance(schema, dict):
        if not isinstance(value, Mapping):
            _fail(f"expected an object, got {type(value).__name__}", path, file)
        for key, sub in schema.items():
            if key == "*":
                continue
            optional = key.endswith("?")
            name = key.rstrip("?")
            sub_path = f"{path}.{name}" if path else name
            if name not in value:
                if optional:
                    continue
                _fail("missing key", sub_path, file)
            _check(value[name], sub, sub_path, file)
        if "*" not in schema:
            known = {k.rstrip("?") for k in schema}
            extra = sorted(set(value) - known)
            if extra:
                _fail(f"unknown key(s) {extra}", f"{path}.{extra[0]}" if path else extra[0], file)
        return
    ok = {
        "str": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
        "object": lambda v: isinstance(v, Mapping),
        "any": lambda v: True,
    }[schema](value)
    if not ok:
        _fail(f"expected {schema}, got {value!r:.60}", path, file)


def validate_truth(doc: Any, *, file: str | os.PathLike[str] | None = None) -> None:
    """Check a truth document; raise MXTFormatError naming the first bad key.

    Besides the types (module docstring): ``schema`` must be ``mxt-sim-truth``,
    ``schema_version`` 1, ``seed`` >= 0, ``tstop > tstart``, source Dec within
    [-90, 90], flux >= 0, flux_band increasing, intervals ``[a, b]`` with ``a <= b``.
    """
    f = None if file is None else str(file)
    _check(doc, _SCHEMA, "", f)
    if doc["schema"] != TRUTH_SCHEMA:
        _fail(f"expected {TRUTH_SCHEMA!r}, got {doc['schema']!r}", "schema", f)
    if doc["schema_version"] != TRUTH_SCHEMA_VERSION:
        _fail(f"unsupported version {doc['schema_version']} (this reader knows {TRUTH_SCHEMA_VERSION})", "schema_version", f)
    if doc["seed"] < 0:
        _fail("must be >= 0", "seed", f)
    if not doc["tstop"] > doc["tstart"]:
        _fail("must be after tstart", "tstop", f)
    if not -90 <= doc["pointing"]["dec"] <= 90:
        _fail("must be within [-90, 90]", "pointing.dec", f)
    for i, src in enumerate(doc["sources"]):
        if not -90 <= src["dec"] <= 90:
            _fail("must be within [-90, 90]", f"sources[{i}].dec", f)
        if src["flux"] < 0:
            _fail("must be >= 0", f"sources[{i}].flux", f)
        band = src["flux_band"]
        if len(band) != 2 or not 0 < band[0] < band[1]:
            _fail("must be [lo, hi] with 0 < lo < hi", f"sources[{i}].flux_band", f)
    for kind, ivs in doc["bad_time"].items():
        for j, iv in enumerate(ivs):
            if len(iv) != 2 or iv[0] > iv[1]:
                _fail("must be [start, stop] with start <= stop", f"bad_time.{kind}[{j}]", f)
    for i, p in enumerate(doc["passes"]):
        if not p["stop"] > p["start"]:
            _fail("must be after start", f"passes[{i}].stop", f)


def read_truth(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a ``truth.json``.

    Raises
    ------
    MXTFormatError
        Unreadable, not JSON, or not following the schema.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MXTFormatError("file not found", file=p) from None
    except (OSError, ValueError) as exc:
        raise MXTFormatError(f"not valid JSON: {exc}", file=p) from None
    validate_truth(doc, file=p)
    return doc


def write_truth(path: str | os.PathLike[str], doc: Mapping[str, Any]) -> Path:
    """Validate and write a truth document atomically (sorted keys, 2-space indent)."""
    from mxt_pipeline.io.fits import atomic_write_bytes

    validate_truth(doc, file=path)
    text = json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8"))
