"""CAL_CBD boundary strings and ``quzcif`` selection expressions.

A calibration dataset states the part of parameter space where it applies with up to
nine boundary strings (header keywords ``CBDn0001``, CIF column ``CAL_CBD``), in the
syntax of OGIP memo CAL/GEN/92-011 section B.3 as summarised in the HEASARC CALDB
documentation:

``PARAM(value)unit``
    one value, e.g. ``THETA(0)arcmin``;
``PARAM(min-max)unit``
    an inclusive range, e.g. ``ENERGY(0.2-10)keV``;
``PARAM(a,b,c)unit``
    a list of values (each may itself be a range), e.g. ``GRADE(0,1-4)``;
``NONE``
    an unused slot.

Values that are not numbers are strings compared case-insensitively
(``DATAMODE(PC)``).  A ``-`` between two numbers makes a range; a negative number is
written with its sign (``TEMP(-120--100)C``); anything else containing ``-`` is a
string.

A query selects on boundaries with a FORTRAN-style expression
(``theta.eq.10.and.energy.eq.5``): conditions ``PARAM.OP.VALUE`` with ``OP`` one of
``EQ LT LE GE GT`` (case-insensitive), joined by ``.AND.`` and ``.OR.`` where ``.AND.``
binds tighter than ``.OR.`` (so ``a.or.b.and.c`` is ``a or (b and c)``).

Evaluation rules (HEASoft ``HDgtcalf`` / ``quzcif`` conventions, see docs/caldb.md):

* a dataset with no boundary on the queried parameter satisfies the condition (it is
  not restricted in that parameter);
* a boundary is a set of values; the condition holds when *some* value ``x`` of that
  set satisfies ``x OP VALUE``.  For a range ``[lo, hi]`` this gives ``EQ``:
  ``lo <= v <= hi`` (inclusive), ``LT``: ``lo < v``, ``LE``: ``lo <= v``,
  ``GT``: ``hi > v``, ``GE``: ``hi >= v``;
* when either side is not a number the comparison is between case-folded strings; a
  numeric range never equals a string;
* several boundaries on the same parameter must all hold.

Units are not converted: a query value is taken in the unit of the boundary.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mxt_pipeline.errors import MXTInputError

__all__ = [
    "NumRange",
    "Boundary",
    "Condition",
    "Expression",
    "parse_number",
    "format_number",
    "parse_boundary",
    "parse_boundaries",
    "parse_expression",
    "OPERATORS",
]

#: A decimal number with optional sign, fraction and exponent (no inf/nan).
_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_NUM_RE = re.compile(rf"^\s*({_NUM})\s*$")
_RANGE_RE = re.compile(rf"^\s*({_NUM})\s*-\s*({_NUM})\s*$")
_PARAM = r"[A-Za-z][A-Za-z0-9_]*"
_BOUNDARY_RE = re.compile(rf"^\s*({_PARAM})\s*\(([^()]*)\)\s*([^()]*?)\s*$")
_CONDITION_RE = re.compile(rf"^\s*({_PARAM})\.(EQ|LT|LE|GE|GT)\.(.*?)\s*$", re.IGNORECASE)
_OR_RE = re.compile(r"\.OR\.", re.IGNORECASE)
_AND_RE = re.compile(r"\.AND\.", re.IGNORECASE)
_NESTED_OP_RE = re.compile(r"\.(EQ|LT|LE|GE|GT)\.", re.IGNORECASE)

#: Comparison operators of the expressions.
OPERATORS = ("EQ", "LT", "LE", "GE", "GT")


def parse_number(text: str) -> float | None:
    """Return ``text`` as a finite float when it is a plain decimal number, else None.

    Only the decimal syntax of ``_NUM`` counts: ``inf``, ``nan``, hexadecimal and
    underscores (all accepted by :func:`float`) are strings here.
    """
    m = _NUM_RE.match(text)
    if m is None:
        return None
    value = float(m.group(1))
    return value if math.isfinite(value) else None


def format_number(value: float) -> str:
    """Shortest text that parses back to ``value`` (integers without a decimal point)."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True)
class NumRange:
    """An inclusive numeric interval ``[lo, hi]`` (``lo == hi`` for one value)."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            raise MXTInputError(f"boundary values must be finite, got {self.lo}..{self.hi}")
        if self.lo > self.hi:
            raise MXTInputError(f"empty boundary range {format_number(self.lo)}-{format_number(self.hi)}")

    def text(self) -> str:
        if self.lo == self.hi:
            return format_number(self.lo)
        return f"{format_number(self.lo)}-{format_number(self.hi)}"


Item = NumRange | str


def _parse_item(text: str, boundary: str) -> Item:
    stripped = text.strip()
    if not stripped:
        raise MXTInputError(f"empty value in boundary {boundary!r}")
    m = _RANGE_RE.match(stripped)
    if m is not None:
        lo, hi = float(m.group(1)), float(m.group(2))
        if math.isfinite(lo) and math.isfinite(hi):
            if lo > hi:
                raise MXTInputError(f"range {stripped!r} of boundary {boundary!r} has min > max")
            return NumRange(lo, hi)
    value = parse_number(stripped)
    if value is not None:
        return NumRange(value, value)
    if any(ch in stripped for ch in "(),"):
        raise MXTInputError(f"bad value {stripped!r} in boundary {boundary!r}")
    return stripped


@dataclass(frozen=True)
class Boundary:
    """One parsed CAL_CBD string: a parameter, its values and their unit.

    Parameters
    ----------
    param : str
        Parameter name, stored upper-case (``ENERGY``).
    items : tuple of NumRange or str
        The allowed values: numeric intervals or strings.
    unit : str
        Unit text after the closing parenthesis (may be empty).
    """

    param: str
    items: tuple[Item, ...]
    unit: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(_PARAM, self.param):
            raise MXTInputError(f"bad boundary parameter name {self.param!r}")
        object.__setattr__(self, "param", self.param.upper())
        if not self.items:
            raise MXTInputError(f"boundary {self.param} has no value")
        for item in self.items:
            if isinstance(item, str) and (
                not item or item != item.strip() or any(ch in item for ch in "(),")
                or parse_number(item) is not None or _RANGE_RE.match(item)
            ):
                raise MXTInputError(f"bad string value {item!r} in boundary {self.param}")
        if any(ch in self.unit for ch in "()") or self.unit != self.unit.strip():
            raise MXTInputError(f"bad unit {self.unit!r} in boundary {self.param}")

    def text(self) -> str:
        """The canonical CAL_CBD string, e.g. ``ENERGY(0.2-10)keV``."""
        values = ",".join(i if isinstance(i, str) else i.text() for i in self.items)
        return f"{self.param}({values}){self.unit}"

    def satisfies(self, cond: Condition) -> bool:
        """True when some value of this boundary satisfies ``cond`` (see module doc)."""
        return any(_item_satisfies(item, cond) for item in self.items)


def parse_boundary(text: str | None) -> Boundary | None:
    """Parse one CAL_CBD string; ``NONE`` (any case) or blank gives None.

    Raises
    ------
    MXTInputError
        When the text does not follow ``PARAM(values)unit``.
    """
    if text is None or not text.strip() or text.strip().upper() == "NONE":
        return None
    m = _BOUNDARY_RE.match(text)
    if m is None:
        raise MXTInputError(f"boundary {text!r} does not follow PARAM(value)unit")
    param, inner, unit = m.group(1), m.group(2), m.group(3)
    items = tuple(_parse_item(part, text) for part in inner.split(","))
    return Boundary(param, items, unit)


def parse_boundaries(texts: Iterable[str | None]) -> tuple[Boundary, ...]:
    """Parse the CAL_CBD strings of one row, dropping ``NONE`` slots."""
    out = []
    for text in texts:
        b = parse_boundary(text)
        if b is not None:
            out.append(b)
    return tuple(out)


@dataclass(frozen=True)
class Condition:
    """``PARAM.OP.VALUE``; ``number`` is the value as a float when it is numeric."""

    param: str
    op: str
    text: str

    @property
    def number(self) -> float | None:
        return parse_number(self.text)

    def render(self) -> str:
        return f"{self.param.lower()}.{self.op.lower()}.{self.text}"


def _compare(a, b, op: str) -> bool:
    if op == "EQ":
        return a == b
    if op == "LT":
        return a < b
    if op == "LE":
        return a <= b
    if op == "GT":
        return a > b
    return a >= b  # GE


def _item_satisfies(item: Item, cond: Condition) -> bool:
    value = cond.number
    if isinstance(item, NumRange):
        if value is None:
            return False  # a numeric boundary never matches a non-numeric value
        if cond.op == "EQ":
            return item.lo <= value <= item.hi
        if cond.op == "LT":
            return item.lo < value
        if cond.op == "LE":
            return item.lo <= value
        if cond.op == "GT":
            return item.hi > value
        return item.hi >= value  # GE
    return _compare(item.casefold(), cond.text.casefold(), cond.op)


@dataclass(frozen=True)
class Expression:
    """A parsed selection expression in disjunctive normal form.

    ``terms`` is a tuple of AND-groups; the expression holds when all conditions of at
    least one group hold.  The empty expression (no terms) always holds.
    """

    terms: tuple[tuple[Condition, ...], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms)

    def render(self) -> str:
        """Canonical text (``-`` for the empty expression)."""
        if not self.terms:
            return "-"
        return ".or.".join(".and.".join(c.render() for c in term) for term in self.terms)

    def matches(self, boundaries: Sequence[Boundary]) -> bool:
        """Evaluate the expression against the boundaries of one dataset."""
        if not self.terms:
            return True
        return any(all(_condition_holds(c, boundaries) for c in term) for term in self.terms)


def _condition_holds(cond: Condition, boundaries: Sequence[Boundary]) -> bool:
    relevant = [b for b in boundaries if b.param == cond.param]
    # No boundary on that parameter: the dataset is not restricted in it.
    return all(b.satisfies(cond) for b in relevant)


def parse_expression(text: str | None) -> Expression:
    """Parse a ``quzcif`` expression; None, blank or ``-`` give the empty expression.

    Raises
    ------
    MXTInputError
        Naming the condition that does not follow ``PARAM.OP.VALUE``.
    """
    if text is None or not text.strip() or text.strip() == "-":
        return Expression()
    terms = []
    for or_part in _OR_RE.split(text):
        conds = []
        for piece in _AND_RE.split(or_part):
            m = _CONDITION_RE.match(piece)
            if m is None:
                raise MXTInputError(
                    f"expression {text!r}: condition {piece.strip()!r} does not follow "
                    "PARAM.OP.VALUE with OP one of EQ, LT, LE, GE, GT"
                )
            value = m.group(3).strip()
            if not value:
                raise MXTInputError(f"expression {text!r}: condition {piece.strip()!r} has no value")
            if any(ch in value for ch in "()"):
                raise MXTInputError(f"expression {text!r}: bad value {value!r}")
            if _NESTED_OP_RE.search(value):
                raise MXTInputError(
                    f"expression {text!r}: value {value!r} holds a comparison; join conditions "
                    "with .and. or .or."
                )
            conds.append(Condition(m.group(1).upper(), m.group(2).upper(), value))
        terms.append(tuple(conds))
    return Expression(tuple(terms))
