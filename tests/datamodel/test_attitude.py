"""Attitude conventions checked against astropy coordinates."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.datamodel import (
    AngleTable,
    Attitude,
    pointing_rotation,
    rotation_to_pointing,
    week_of,
)
from mxt_pipeline.errors import MXTInputError


@given(
    ra=st.floats(0, 359.999),
    dec=st.floats(-89.5, 89.5),
    roll=st.floats(0, 359.999),
)
def test_pointing_round_trip_and_roll_is_position_angle(ra, dec, roll):
    rot = pointing_rotation(ra, dec, roll)
    ra2, dec2, roll2 = rotation_to_pointing(rot)
    assert SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(ra2[0] * u.deg, dec2[0] * u.deg)).arcsec < 1e-6
    assert abs(((roll2[0] - roll + 180) % 360) - 180) < 1e-6
    # A point a little along the instrument +Z axis lies at position angle ROLL.
    v = rot.apply(np.array([1.0, 0.0, 1e-4]))[0]
    tip = SkyCoord(*np.degrees([np.arctan2(v[1], v[0]), np.arcsin(v[2] / np.linalg.norm(v))]), unit="deg")
    pa = SkyCoord(ra * u.deg, dec * u.deg).position_angle(tip).deg
    assert abs(((pa - roll + 180) % 360) - 180) < 1e-3


def test_interpolation_between_samples_is_geodesic():
    att = Attitude.from_pointing([0.0, 100.0], [10.0, 10.0], [0.0, 1.0], [0.0, 0.0])
    ra, dec, _ = att.pointing(np.array([25.0, 50.0, 150.0]))
    np.testing.assert_allclose(dec, [0.25, 0.5, 1.0], atol=1e-9)  # clamped after the end
    np.testing.assert_allclose(ra, 10.0, atol=1e-9)


def test_stability_flags_slew():
    t = np.arange(0, 100.0, 1.0)
    dec = np.where(t < 50, 0.0, np.minimum((t - 50) * 0.1, 2.0))  # 360"/s slew from t=50 to 70
    att = Attitude.from_pointing(t, np.zeros_like(t), dec, np.zeros_like(t))
    stable = att.stable(max_rate_arcsec_s=10.0)
    assert stable.contains(np.array([10.0, 80.0])).all()
    assert not stable.contains(np.array([55.0, 65.0])).any()


def test_bad_attitudes_refused():
    with pytest.raises(MXTInputError, match="strictly increasing"):
        Attitude.from_pointing([1.0, 1.0], [0, 0], [0, 0], [0, 0])
    att = Attitude.from_pointing([1.0, 2.0], [0, 0], [0, 0], [0, 0])
    table = att.to_table()
    table["QPARAM"][0] = [1.0, 1.0, 0.0, 0.0]
    with pytest.raises(MXTInputError, match="unit quaternions"):
        Attitude(table)


def test_limb_crossings_interpolated():
    ang = AngleTable.from_columns(
        TIME=np.array([0.0, 10.0, 20.0, 30.0]),
        EARTH_ELV=np.array([-10.0, 10.0, 10.0, -10.0]),
        SUN_ANGLE=np.full(4, 90.0),
        MOON_ANGLE=np.full(4, 90.0),
    )
    good = ang.above_limb(0.0)
    np.testing.assert_allclose([good.start[0], good.stop[0]], [5.0, 25.0])


def test_week_numbers():
    assert list(week_of(np.array([0.0, 604799.9, 604800.0]))) == [0, 0, 1]
