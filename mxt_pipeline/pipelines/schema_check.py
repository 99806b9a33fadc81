"""A small JSON Schema checker for the contracts of the pipelines (runtime data).

It interprets the subset of JSON Schema (draft 2020-12) that
``runtime_data.schema.json`` uses, so the documented schema and the checks made at run
time are one and the same document and cannot drift apart.  Keywords understood:
``type``, ``enum``, ``required``, ``properties``, ``additionalProperties`` (boolean or
schema), ``items``, ``minItems``, ``minLength``, ``maxLength``, ``pattern``,
``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``, ``anyOf``.
Annotations (``description``, ``title``, ``$schema``, ``$id``) are ignored; any other
keyword is refused when the schema is loaded, so the schema cannot use a rule this
checker would silently skip.

Unlike a generic validator, every problem names the *key path* of the offending value
(``target.burst_position.ra``), which is what an operator needs to fix the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SchemaProblem", "check", "check_schema_keywords", "SUPPORTED_KEYWORDS"]

SUPPORTED_KEYWORDS = frozenset(
    {
        "type", "enum", "required", "properties", "additionalProperties", "items", "minItems",
        "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "anyOf",
    }
)  # fmt: skip
_ANNOTATIONS = frozenset({"description", "title", "$schema", "$id", "default", "examples"})


@dataclass(frozen=True)
class SchemaProblem:
    """One violation: the key path (dotted, ``[i]`` for array items) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<top level>'}: {self.message}"


def check_schema_keywords(schema: Any, where: str = "#") -> None:
    """Raise ValueError when ``schema`` uses a keyword this checker does not implement."""
    if not isinstance(schema, Mapping):
        if isinstance(schema, bool):
            return
        raise ValueError(f"{where}: a schema must be an object or a boolean")
    unknown = set(schema) - SUPPORTED_KEYWORDS - _ANNOTATIONS
    if unknown:
        raise ValueError(f"{where}: unsupported schema keyword(s) {sorted(unknown)}")
    for name, sub in schema.get("properties", {}).items():
        check_schema_keywords(sub, f"{where}/properties/{name}")
    for key in ("additionalProperties", "items"):
        if isinstance(schema.get(key), (Mapping, bool)):
            check_schema_keywords(schema[key], f"{where}/{key}")
    for i, sub in enumerate(schema.get("anyOf", [])):
        check_schema_keywords(sub, f"{where}/anyOf/{i}")


def _type_ok(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, Mapping)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    raise ValueError(f"unknown JSON type {name!r}")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers (``True != 1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def check(instance: Any, schema: Any, path: str = "") -> list[SchemaProblem]:
    """Every violation of ``schema`` by ``instance`` (empty list when valid)."""
    if schema is True:
        return []
    if schema is False:
        return [SchemaProblem(path, "no value is allowed here")]
    problems: list[SchemaProblem] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(instance, t) for t in types):
            return [SchemaProblem(path, f"expected {' or '.join(types)}, got {_json_type(instance)}")]
    if "enum" in schema and not any(_json_equal(instance, e) for e in schema["enum"]):
        problems.append(SchemaProblem(path, f"{instance!r} is not one of {schema['enum']}"))
    if isinstance(instance, str):
        if "minLength" in schema and len(instance) < schema["minLength"]:
            problems.append(SchemaProblem(path, f"shorter than {schema['minLength']} character(s)"))
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            problems.append(SchemaProblem(path, f"longer than {schema['maxLength']} characters"))
        if "pattern" in schema and re.search(schema["pattern"], instance) is None:
            problems.append(SchemaProblem(path, f"does not match the pattern {schema['pattern']!r}"))
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        x = instance
        if isinstance(x, float) and not math.isfinite(x):
            problems.append(SchemaProblem(path, "must be a finite number"))
        if "minimum" in schema and x < schema["minimum"]:
            problems.append(SchemaProblem(path, f"{x} is below the minimum {schema['minimum']}"))
        if "maximum" in schema and x > schema["maximum"]:
            problems.append(SchemaProblem(path, f"{x} is above the maximum {schema['maximum']}"))
        if "exclusiveMinimum" in schema and x <= schema["exclusiveMinimum"]:
            problems.append(SchemaProblem(path, f"{x} must be greater than {schema['exclusiveMinimum']}"))
        if "exclusiveMaximum" in schema and x >= schema["exclusiveMaximum"]:
            problems.append(SchemaProblem(path, f"{x} must be less than {schema['exclusiveMaximum']}"))
    if isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            problems.append(SchemaProblem(path, f"needs at least {schema['minItems']} item(s)"))
        if "items" in schema:
            for i, item in enumerate(instance):
                problems += check(item, schema["items"], _join(path, i))
    if isinstance(instance, Mapping):
        for key in schema.get("required", []):
            if key not in instance:
                problems.append(SchemaProblem(_join(path, key), "required key is missing"))
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in instance.items():
            if key in props:
                problems += check(value, props[key], _join(path, key))
            elif extra is False:
                allowed = ", ".join(sorted(props))
                problems.append(SchemaProblem(_join(path, key), f"unknown key (allowed: {allowed})"))
            elif isinstance(extra, Mapping):
                problems += check(value, extra, _join(path, key))
    if "anyOf" in schema:
        branches = [check(instance, sub, path) for sub in schema["anyOf"]]
        if all(branches):
            detail = " | ".join("; ".join(str(p) for p in b) for b in branches)
            problems.append(SchemaProblem(path, f"matches none of the allowed forms ({detail})"))
    return problems


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__
