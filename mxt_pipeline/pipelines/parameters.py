"""Declared parameters of a brick: type, default, allowed values, validation.

A brick lists its parameters as :class:`Parameter` objects.  Values come from three
places, in increasing priority: the declared default, the ``parameters`` block of
``runtime_data.json`` (JSON values), and ``--param brick.name=value`` on the command
line (strings).  :meth:`Parameter.coerce` turns any of them into the declared type or
raises :class:`~mxt_pipeline.errors.MXTInputError` naming the brick and the parameter,
so a typo fails before any work is done rather than half way through a run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mxt_pipeline.errors import MXTInputError

__all__ = ["Parameter", "ParameterSet", "parse_overrides"]

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}
_TYPES = (bool, int, float, str)


@dataclass(frozen=True)
class Parameter:
    """One parameter of a brick.

    Parameters
    ----------
    name : str
        Identifier (``[a-z_][a-z0-9_]*``).
    type : type
        ``bool``, ``int``, ``float`` or ``str``.
    default : object
        Default value (must itself be valid; ``None`` only when ``nullable``).
    doc : str
        One line: what it does, with its unit.
    choices : tuple, optional
        The allowed values.
    minimum, maximum : float, optional
        Inclusive bounds of numeric parameters.
    nullable : bool
        ``None`` (JSON ``null``, CLI ``none``) is allowed and means "automatic".
    """

    name: str
    type: type
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise TypeError(f"parameter {self.name}: type must be one of bool, int, float, str")
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"parameter name {self.name!r} must be a lower-case identifier")
        # The default must pass its own validation: a wrong default is a bug of the brick.
        self.coerce(self.default, owner="<default>")

    def coerce(self, value: Any, *, owner: str = "") -> Any:
        """Return ``value`` converted to the declared type, or raise.

        Strings (from the command line) are parsed; JSON numbers are accepted for
        floats, whole floats for integers; booleans are never taken as numbers.

        Raises
        ------
        MXTInputError
            Naming ``owner.name``, the value and what is allowed.
        """
        where = f"{owner}.{self.name}" if owner else self.name
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            if self.nullable:
                return None
            raise MXTInputError(f"parameter {where} cannot be null", keyword=where)
        try:
            out = self._convert(value)
        except (TypeError, ValueError):
            raise MXTInputError(
                f"parameter {where}: {value!r} is not a valid {self.type.__name__}", keyword=where
            ) from None
        if self.choices is not None and out not in self.choices:
            raise MXTInputError(
                f"parameter {where}: {out!r} is not one of {list(self.choices)}", keyword=where
            )
        if self.type in (int, float):
            if self.type is float and not math.isfinite(out):
                raise MXTInputError(f"parameter {where} must be finite", keyword=where)
            if self.minimum is not None and out < self.minimum:
                raise MXTInputError(f"parameter {where}: {out} is below the minimum {self.minimum}", keyword=where)
            if self.maximum is not None and out > self.maximum:
                raise MXTInputError(f"parameter {where}: {out} is above the maximum {self.maximum}", keyword=where)
        return out

    def _convert(self, value: Any) -> Any:
        if self.type is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise ValueError(value)
        if isinstance(value, bool):
            raise TypeError("a boolean is not a number or a string")
        if self.type is int:
            if isinstance(value, int):
                return value
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError(value)
                return int(value)
            if isinstance(value, str):
                return int(value.strip())
            raise TypeError(value)
        if self.type is float:
            if isinstance(value, (int, float)):
                return float(value)
            if isinstance(value, str):
                return float(value.strip())
            raise TypeError(value)
        if not isinstance(value, str):
            raise TypeError(value)
        return value

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (documentation and the run report)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type.__name__, "default": self.default, "doc": self.doc}
        if self.choices is not None:
            out["choices"] = list(self.choices)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.nullable:
            out["nullable"] = True
        return out


class ParameterSet(Mapping[str, Any]):
    """The validated parameter values of one brick for one run.

    A read-only mapping that also offers attribute access (``params.bins``).
    """

    def __init__(self, owner: str, declared: Iterable[Parameter], values: Mapping[str, Any] | None = None):
        self._owner = owner
        self._declared = {p.name: p for p in declared}
        values = dict(values or {})
        unknown = sorted(set(values) - set(self._declared))
        if unknown:
            known = ", ".join(sorted(self._declared)) or "none"
            raise MXTInputError(
                f"unknown parameter(s) {unknown} for brick {owner!r} (known: {known})",
                keyword=f"{owner}.{unknown[0]}",
            )
        self._values = {
            name: p.coerce(values[name], owner=owner) if name in values else p.default
            for name, p in self._declared.items()
        }

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"brick {self._owner!r} has no parameter {name!r}") from None

    def __repr__(self) -> str:
        return f"ParameterSet({self._owner!r}, {self._values!r})"

    def as_dict(self) -> dict[str, Any]:
        """A plain copy of the values."""
        return dict(self._values)


def parse_overrides(items: Iterable[str]) -> dict[str, dict[str, str]]:
    """Parse ``brick.name=value`` strings (``--param``) into ``{brick: {name: value}}``.

    Raises
    ------
    MXTInputError
        For an item without ``=`` or without a ``brick.`` prefix.
    """
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        brick, dot, name = key.strip().partition(".")
        if not sep or not dot or not brick or not name:
            raise MXTInputError(f"parameter override {item!r} must read BRICK.NAME=VALUE", keyword=key.strip() or item)
        out.setdefault(brick, {})[name] = value
    return out
