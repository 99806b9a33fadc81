"""Declared parameters: coercion from JSON and command-line strings, bounds, choices."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.pipelines.parameters import Parameter, ParameterSet, parse_overrides

BINS = Parameter("bins", int, 8, "number of bins", minimum=1, maximum=1000)
SNR = Parameter("snr", float, 3.0, "target S/N", minimum=0.5)
MODE = Parameter("binning", str, "snr", "binning", choices=("snr", "blocks", "fixed"))
FLAG = Parameter("previews", bool, True, "make previews")
AUTO = Parameter("threshold", float, None, "automatic when null", nullable=True)


@given(st.integers(1, 1000))
def test_int_from_string_and_json_round_trip(n):
    assert BINS.coerce(str(n)) == n
    assert BINS.coerce(n) == n
    assert BINS.coerce(float(n)) == n


@given(st.integers().filter(lambda n: n < 1 or n > 1000))
def test_int_out_of_bounds_is_refused_naming_the_parameter(n):
    with pytest.raises(MXTInputError) as exc:
        BINS.coerce(n, owner="histogram")
    assert exc.value.keyword == "histogram.bins"


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=0.5, max_value=1e6))
def test_float_from_its_repr(x):
    assert SNR.coerce(repr(x)) == x


@pytest.mark.parametrize("value", [2.5, "2.5", "x", True, [1]])
def test_int_refuses_non_integers_and_booleans(value):
    with pytest.raises(MXTInputError):
        BINS.coerce(value)


@pytest.mark.parametrize("value", ["nan", "inf", math.inf, 0.1])
def test_float_refuses_non_finite_and_below_minimum(value):
    with pytest.raises(MXTInputError):
        SNR.coerce(value)


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("No", False), ("1", True), ("off", False), (False, False)])
def test_bool_spellings(text, expected):
    assert FLAG.coerce(text) is expected


def test_bool_refuses_numbers_and_other_words():
    for value in (1, 0.0, "maybe"):
        with pytest.raises(MXTInputError):
            FLAG.coerce(value)


def test_choices_and_null():
    assert MODE.coerce("blocks") == "blocks"
    with pytest.raises(MXTInputError, match="not one of"):
        MODE.coerce("bayesian")
    assert AUTO.coerce(None) is None
    assert AUTO.coerce("null") is None
    with pytest.raises(MXTInputError, match="cannot be null"):
        SNR.coerce(None)


def test_a_bad_default_is_a_bug_caught_at_declaration():
    with pytest.raises(MXTInputError):
        Parameter("bins", int, 0, "bad default", minimum=1)
    with pytest.raises(TypeError):
        Parameter("x", list, [], "unsupported type")


def test_parameter_set_defaults_overrides_and_unknown_names():
    ps = ParameterSet("lightcurves", [BINS, SNR, MODE], {"snr": "5", "binning": "fixed"})
    assert ps.bins == 8 and ps.snr == 5.0 and ps["binning"] == "fixed"
    assert ps.as_dict() == {"bins": 8, "snr": 5.0, "binning": "fixed"}
    with pytest.raises(MXTInputError) as exc:
        ParameterSet("lightcurves", [BINS], {"bisn": 3})
    assert "bisn" in str(exc.value) and "bins" in str(exc.value)
    with pytest.raises(AttributeError):
        _ = ps.nope


def test_parse_overrides():
    assert parse_overrides(["detect.det_ml_threshold=12", "lightcurves.binning=blocks", "detect.bands=0.3-2,2-10"]) == {
        "detect": {"det_ml_threshold": "12", "bands": "0.3-2,2-10"},
        "lightcurves": {"binning": "blocks"},
    }
    for bad in ("threshold=3", "detect.threshold", ".x=1"):
        with pytest.raises(MXTInputError):
            parse_overrides([bad])
