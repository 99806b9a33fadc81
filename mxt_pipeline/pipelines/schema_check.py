"""JSON Schema checks of the pipelines' contracts (runtime data), with key paths.

The documented ``runtime_data.schema.json`` is the check made at run time: it is
validated by ``jsonschema`` (draft 2020-12).  What this module adds is the form of the
answer an operator needs: every problem names the *key path* of the offending value
(``target.burst_position.ra``, ``inputs.l1[2]``), and non-finite numbers (NaN,
infinities, which JSON Schema's ``number`` type admits) are refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

__all__ = ["SchemaProblem", "check", "check_schema_keywords"]


@dataclass(frozen=True)
class SchemaProblem:
    """One violation: the key path (dotted, ``[i]`` for array items) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<top level>'}: {self.message}"


def check_schema_keywords(schema: Any, where: str = "#") -> None:
    """Raise ValueError when ``schema`` is not a valid draft 2020-12 JSON Schema."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        loc = "/".join(str(p) for p in exc.absolute_path)
        raise ValueError(f"{where}{'/' + loc if loc else ''}: invalid schema: {exc.message}") from None


def _dotted(parts: Iterable[Any], prefix: str = "") -> str:
    out = prefix
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out = f"{out}.{p}" if out else str(p)
    return out


def _non_finite(instance: Any, path: str) -> list[SchemaProblem]:
    if isinstance(instance, float) and not math.isfinite(instance):
        return [SchemaProblem(path, "must be a finite number")]
    if isinstance(instance, Mapping):
        return [p for k, v in instance.items() for p in _non_finite(v, _dotted([str(k)], path))]
    if isinstance(instance, (list, tuple)):
        return [p for i, v in enumerate(instance) for p in _non_finite(v, _dotted([i], path))]
    return []


_JSON_TYPES = (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float), ("string", str),
               ("array", (list, tuple)), ("object", Mapping))  # fmt: skip


def _json_type(x: Any) -> str:
    for name, kind in _JSON_TYPES:
        if isinstance(x, kind):
            return name
    return type(x).__name__


def _problems(err, path: str) -> list[SchemaProblem]:
    """jsonschema's error as the operator's problems: at the key that is wrong, in words."""
    where = _dotted(err.absolute_path, path)
    kind, value, inst = err.validator, err.validator_value, err.instance
    if kind == "required" and isinstance(inst, Mapping):
        return [SchemaProblem(_dotted([k], where), "required key missing") for k in value if k not in inst]
    if kind == "additionalProperties" and isinstance(inst, Mapping):
        known = set(err.schema.get("properties", {}))
        return [SchemaProblem(_dotted([k], where), "unknown key") for k in inst if k not in known]
    words = {
        "type": lambda: f"expected {' or '.join(value) if isinstance(value, list) else value}, got {_json_type(inst)}",
        "anyOf": lambda: "matches none of the allowed forms",
        "oneOf": lambda: "matches none (or several) of the allowed forms",
        "minItems": lambda: f"needs at least {value} item(s)",
        "minLength": lambda: f"shorter than {value} character(s)",
        "maxLength": lambda: f"longer than {value} characters",
        "pattern": lambda: f"does not match the pattern {value!r}",
        "enum": lambda: f"{inst!r} is not one of {value}",
        "minimum": lambda: f"{inst} is below the minimum {value}",
        "maximum": lambda: f"{inst} is above the maximum {value}",
        "exclusiveMinimum": lambda: f"{inst} must be greater than {value}",
        "exclusiveMaximum": lambda: f"{inst} must be less than {value}",
    }
    return [SchemaProblem(where, words[kind]() if kind in words else err.message)]


def check(instance: Any, schema: Any, path: str = "") -> list[SchemaProblem]:
    """Every violation of ``schema`` by ``instance`` (empty list when valid).

    Parameters
    ----------
    instance : any
        The parsed JSON document.
    schema : mapping or bool
        A draft 2020-12 JSON Schema.
    path : str
        Key path of ``instance`` inside a larger document (prefix of the paths).

    Returns
    -------
    list of SchemaProblem
        Sorted by key path: a missing or unknown key is reported at that key, the
        other violations at the value that breaks them.
    """
    validator = Draft202012Validator(schema)
    problems = [p for err in validator.iter_errors(instance) for p in _problems(err, path)]
    problems += _non_finite(instance, path)
    return sorted(set(problems), key=lambda p: (p.path, p.message))
