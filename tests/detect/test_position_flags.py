"""FLAGS of the source list: a fitted position off the chip or in a masked area is flagged."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxt_pipeline.detect.bands import DEFAULT_BANDS
from mxt_pipeline.detect.pipeline import detect_sources
from mxt_pipeline.detect.radii import quality_factor
from mxt_pipeline.detect.srclist import FLAG_OFF_CHIP, FLAG_UNEXPOSED, position_flags

from .test_pipeline import _observation

_coord = st.floats(-300.0, 560.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_coord, _coord), min_size=1, max_size=20))
def test_off_chip_bit_is_set_exactly_outside_the_pixels(pos):
    ry, rz = np.array(pos, float).T
    flags = position_flags(ry, rz)
    outside = (ry < -0.5) | (ry > 255.5) | (rz < -0.5) | (rz > 255.5)
    assert np.array_equal(flags == FLAG_OFF_CHIP, outside)
    assert np.all((flags == 0) | (flags == FLAG_OFF_CHIP))
    assert flags.dtype == np.int16


def test_non_finite_positions_are_off_chip():
    assert list(position_flags([np.nan, 10.0], [5.0, np.inf])) == [FLAG_OFF_CHIP, FLAG_OFF_CHIP]


def test_unexposed_bit_needs_a_masked_block_not_one_bad_column():
    edges = np.arange(-128.0, 129.0)  # DET grid of 1 pixel, cell i centred on i - 127.5
    g = np.ones((256, 256))
    g[100:110, :] = 0.0  # a masked block of 10 columns (DETY -28 .. -18)
    g[200, :] = 0.0  # one bad column (DETY 72 .. 73)
    dety = np.array([-23.0, 72.5, 0.0, -17.2])
    detz = np.zeros(4)
    raw = dety + 127.5
    flags = position_flags(raw, detz + 127.5, dety, detz, y_edges=edges, z_edges=edges, exposure=g)
    # Inside the block: flagged; on a single bad column or next to the block: not.
    assert list(flags) == [FLAG_UNEXPOSED, 0, 0, 0]


@pytest.mark.parametrize("seed", [0, 2])
def test_bright_source_off_the_chip_is_listed_flagged_and_not_alert_quality(seed):
    """A 30000-count source 42 pixels beyond the chip edge, seen through its arms, and a
    300-count source inside: both are listed; the outside one carries OFF_CHIP and QF 0,
    the inside one FLAGS 0 and the QF of its radius."""
    rng = np.random.default_rng(seed)
    ev, cal, att, _ = _observation(rng, [(170.0, 10.0, 30000), (-40.0, 30.0, 300)])
    table = detect_sources(ev, cal, DEFAULT_BANDS, attitude=att)
    off = (table["RAWY"] > 255.5) | (table["RAWZ"] > 255.5) | (table["RAWY"] < -0.5) | (table["RAWZ"] < -0.5)
    assert off.sum() >= 1 and (~off).sum() >= 1
    assert np.all(table["FLAGS"][off] & FLAG_OFF_CHIP) and np.all(table["QF"][off] == 0)
    assert np.all(table["FLAGS"][~off] == 0)
    assert np.array_equal(table["QF"][~off], quality_factor(table["ERR_R90"][~off]))
