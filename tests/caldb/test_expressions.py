"""CAL_CBD boundary strings and quzcif expressions: parser unit and property tests."""

from __future__ import annotations

import math
import operator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.caldb.expressions import (
    Boundary,
    Condition,
    Expression,
    NumRange,
    format_number,
    parse_boundary,
    parse_expression,
    parse_number,
)
from mxt_pipeline.errors import MXTInputError

# ----------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("text", "param", "items", "unit"),
    [
        ("ENERGY(0.2-10)keV", "ENERGY", (NumRange(0.2, 10.0),), "keV"),
        ("energy(5)keV", "ENERGY", (NumRange(5.0, 5.0),), "keV"),
        ("TEMP(-120--100)C", "TEMP", (NumRange(-120.0, -100.0),), "C"),
        ("GRADE(0,1-4,7)", "GRADE", (NumRange(0, 0), NumRange(1, 4), NumRange(7, 7)), ""),
        ("DATAMODE(PC)", "DATAMODE", ("PC",), ""),
        ("E(1e-5-2.5E-3)keV", "E", (NumRange(1e-5, 2.5e-3),), "keV"),
        ("  THETA( 0 - 30 ) arcmin ", "THETA", (NumRange(0, 30),), "arcmin"),
        ("WINDOW(FULL-FRAME)", "WINDOW", ("FULL-FRAME",), ""),
    ],
)
def test_parse_boundary_examples(text, param, items, unit):
    b = parse_boundary(text)
    assert b == Boundary(param, items, unit)


@pytest.mark.parametrize("text", ["NONE", "none", "", "   ", None])
def test_none_boundary(text):
    assert parse_boundary(text) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("ENERGY(10-2)keV", "min > max"),
        ("ENERGY()keV", "empty value"),
        ("ENERGY(1,)keV", "empty value"),
        ("ENERGY(1keV", "PARAM(value)unit"),
        ("(1)keV", "PARAM(value)unit"),
        ("2ENERGY(1)keV", "PARAM(value)unit"),
        ("E(a(b))", "PARAM(value)unit"),
    ],
)
def test_parse_boundary_errors(text, fragment):
    with pytest.raises(MXTInputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        parse_boundary(text)


def _b(text: str) -> Boundary:
    b = parse_boundary(text)
    assert b is not None
    return b


@pytest.mark.parametrize(
    ("expr", "cbds", "expected"),
    [
        ("energy.eq.5", ["ENERGY(2-10)keV"], True),
        ("energy.eq.10", ["ENERGY(2-10)keV"], True),  # EQ against a range is inclusive
        ("energy.eq.10.0001", ["ENERGY(2-10)keV"], False),
        ("energy.lt.2", ["ENERGY(2-10)keV"], False),
        ("energy.le.2", ["ENERGY(2-10)keV"], True),
        ("energy.gt.10", ["ENERGY(2-10)keV"], False),
        ("energy.ge.10", ["ENERGY(2-10)keV"], True),
        ("ENERGY.EQ.5", ["energy(2-10)keV"], True),  # case-insensitive
        ("theta.eq.10", ["ENERGY(2-10)keV"], True),  # no THETA boundary: not restricted
        ("energy.eq.5.and.theta.eq.40", ["ENERGY(2-10)keV", "THETA(0-30)arcmin"], False),
        ("energy.eq.5.or.theta.eq.40", ["ENERGY(2-10)keV", "THETA(0-30)arcmin"], True),
        # .AND. binds tighter than .OR.: false.or.(true.and.true)
        ("energy.eq.1.or.energy.eq.5.and.theta.eq.10", ["ENERGY(2-10)keV", "THETA(0-30)arcmin"], True),
        # (false.and.x).or.false
        ("energy.eq.1.and.theta.eq.10.or.theta.eq.40", ["ENERGY(2-10)keV", "THETA(0-30)arcmin"], False),
        ("datamode.eq.pc", ["DATAMODE(PC)"], True),  # strings compare case-insensitively
        ("datamode.eq.wt", ["DATAMODE(PC)"], False),
        ("datamode.lt.wt", ["DATAMODE(PC)"], True),
        ("energy.eq.high", ["ENERGY(2-10)keV"], False),  # a numeric range never equals a string
        ("grade.eq.3", ["GRADE(0,2-4)"], True),
        ("grade.eq.1", ["GRADE(0,2-4)"], False),
        ("energy.eq.5", ["ENERGY(0-1)keV", "ENERGY(4-6)keV"], False),  # every boundary must hold
        ("-", ["ENERGY(0-1)keV"], True),
        ("energy.eq.-3", ["ENERGY(-5--1)keV"], True),
    ],
)
def test_expression_evaluation(expr, cbds, expected):
    boundaries = [_b(c) for c in cbds]
    assert parse_expression(expr).matches(boundaries) is expected


@pytest.mark.parametrize(
    "text",
    ["energy", "energy.eq", "energy.eq.", "energy.ne.5", "energy.eq.5.and.", ".eq.5", "energy.eq.(5)",
     "energy.eq.5.xor.theta.eq.1"],
)  # fmt: skip
def test_expression_errors(text):
    with pytest.raises(MXTInputError, match="expression"):
        parse_expression(text)


@pytest.mark.parametrize("text", [None, "", "  ", "-"])
def test_empty_expression_matches_everything(text):
    e = parse_expression(text)
    assert not e
    assert e.matches([_b("ENERGY(1)keV")])


def test_decimal_values_in_expressions():
    e = parse_expression("energy.eq.5.5.and.theta.le.1.25")
    assert e == Expression(((Condition("ENERGY", "EQ", "5.5"), Condition("THETA", "LE", "1.25")),))


def test_parse_number_refuses_what_float_accepts_loosely():
    for text in ("inf", "nan", "0x10", "1_000", "1e999"):
        assert parse_number(text) is None
    assert parse_number(" -2.5e3 ") == -2500.0


# ----------------------------------------------------------------------- properties

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,11}", fullmatch=True)
units = st.sampled_from(["", "keV", "arcmin", "C", "deg", "s"])
words = st.from_regex(r"[A-Za-z][A-Za-z_]{0,7}", fullmatch=True)


@st.composite
def num_ranges(draw) -> NumRange:
    a, b = draw(finite), draw(finite)
    return NumRange(min(a, b), max(a, b))


@st.composite
def boundaries(draw) -> Boundary:
    items = draw(st.lists(st.one_of(num_ranges(), words), min_size=1, max_size=4))
    return Boundary(draw(names), tuple(items), draw(units))


@given(finite)
def test_format_number_round_trips(x):
    assert parse_number(format_number(x)) == x


@given(boundaries())
def test_boundary_text_round_trips(b):
    text = b.text()
    assert parse_boundary(text) == b
    assert parse_boundary(text).text() == text


@given(st.text(max_size=40))
def test_boundary_parser_never_crashes(text):
    """Any text either parses into a boundary that round-trips, or is refused cleanly."""
    try:
        b = parse_boundary(text)
    except MXTInputError:
        return
    if b is not None:
        assert parse_boundary(b.text()) == b


_OPS = {"EQ": operator.eq, "LT": operator.lt, "LE": operator.le, "GT": operator.gt, "GE": operator.ge}


@given(num_ranges(), finite, st.sampled_from(sorted(_OPS)))
def test_numeric_condition_is_existential(rng, value, op):
    """Reference: the condition holds iff some point of [lo, hi] satisfies it.

    For LT/LE/GT/GE the extreme points decide; for EQ the value must lie inside.
    """
    cond = Condition("X", op, format_number(value))
    v = parse_number(cond.text)
    if op == "EQ":
        expected = rng.lo <= v <= rng.hi
    else:
        expected = any(_OPS[op](x, v) for x in (rng.lo, (rng.lo + rng.hi) / 2, rng.hi))
    assert Boundary("X", (rng,), "").satisfies(cond) is expected


@st.composite
def expressions(draw) -> Expression:
    def cond():
        value = draw(st.one_of(finite.map(format_number), words))
        return Condition(draw(names).upper(), draw(st.sampled_from(sorted(_OPS))), value)

    terms = draw(st.lists(st.lists(st.builds(cond), min_size=1, max_size=3).map(tuple), min_size=1, max_size=3))
    return Expression(tuple(terms))


@given(expressions())
def test_expression_render_round_trips(e):
    assert parse_expression(e.render()) == e


@given(expressions(), st.lists(boundaries(), max_size=4))
def test_expression_is_or_of_ands(e, bs):
    """Reference evaluation written from the definition, term by term."""

    def holds(c: Condition) -> bool:
        rel = [b for b in bs if b.param == c.param]
        return all(b.satisfies(c) for b in rel)

    expected = any(all(holds(c) for c in term) for term in e.terms)
    assert e.matches(bs) is expected


def test_nonfinite_ranges_refused():
    with pytest.raises(MXTInputError):
        NumRange(0.0, math.inf)
