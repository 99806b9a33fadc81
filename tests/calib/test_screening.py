"""Time screening: every gap with its origin."""

from __future__ import annotations

import numpy as np
import pytest

from mxt_pipeline.calib.screening import ScreeningParams, screen
from mxt_pipeline.datamodel import GTI, AngleTable, Attitude, SAAIntervals
from mxt_pipeline.errors import MXTInputError

WEEK = 604800.0


def _attitude(t0, t1, slew=None, hole=None, step=1.0):
    t = np.arange(t0, t1 + step, step)
    dec = np.zeros_like(t)
    if slew is not None:
        a, b = slew
        dec = np.clip((t - a) / (b - a), 0, 1) * 1.0  # 1 deg in (b - a) s
    keep = np.ones(t.size, bool)
    if hole is not None:
        keep = (t <= hole[0]) | (t >= hole[1])
    return Attitude.from_pointing(t[keep], np.full(keep.sum(), 30.0), dec[keep], np.zeros(keep.sum()))


def _angles(t0, t1, below=None):
    t = np.arange(t0, t1 + 10.0, 10.0)
    elv = np.full(t.size, 45.0)
    if below is not None:
        elv[(t >= below[0]) & (t <= below[1])] = -20.0
    return AngleTable.from_columns(TIME=t, EARTH_ELV=elv, SUN_ANGLE=np.full(t.size, 90.0), MOON_ANGLE=np.full(t.size, 90.0))


def test_every_gap_has_its_origin():
    t0, t1 = 10 * WEEK, 10 * WEEK + 2000.0
    coverage = GTI([t0, t0 + 1200.0], [t0 + 1000.0, t1])  # telemetry gap 1000-1200
    saa = SAAIntervals.from_columns(START=np.array([t0 + 300.0]), STOP=np.array([t0 + 400.0]))
    att = _attitude(t0, t1, slew=(t0 + 1500.0, t0 + 1560.0), hole=(t0 + 1700.0, t0 + 1800.0))
    ang = _angles(t0, t1, below=(t0 + 600.0, t0 + 700.0))
    frames = np.array([t0 + 50.0, t0 + 51.0])
    res = screen(coverage, t0, t1, att, ang, saa, frame_times=frames, frame_hits=np.array([5, 5000]),
                 frametime=0.1, params=ScreeningParams())  # fmt: skip
    g = res.gaps
    assert g.of_origin("TELEMETRY") == GTI([t0 + 1000.0], [t0 + 1200.0])
    assert g.of_origin("SAA") == GTI([t0 + 300.0], [t0 + 400.0])
    assert g.of_origin("BADFRAME") == GTI([t0 + 51.0], [t0 + 51.1])
    # Earth: the limb crossing is interpolated between 10 s samples (elevation 45 -> -20).
    earth = g.of_origin("EARTH")
    assert len(earth) == 1
    assert earth.start[0] == pytest.approx(t0 + 590.0 + 10 * 35 / 65)
    assert earth.stop[0] == pytest.approx(t0 + 710.0 - 10 * 35 / 65)
    # Slew of 1 deg in 60 s = 60"/s > 30"/s.
    slew = g.of_origin("SLEW")
    assert slew.start[0] == pytest.approx(t0 + 1500.0) and slew.stop[-1] == pytest.approx(t0 + 1560.0)
    assert g.of_origin("ATTITUDE") == GTI([t0 + 1700.0], [t0 + 1800.0])
    # GTI = coverage minus every gap, and nothing else.
    lost = g.as_bad_time()
    assert res.gti == coverage.subtract(lost)
    assert res.gti.exposure == pytest.approx(2000.0 - lost.exposure)
    assert set(res.exposure_by_origin) == {"TELEMETRY", "SAA", "EARTH", "SLEW", "ATTITUDE", "BADFRAME"}


def test_missing_aux_is_bad_time():
    t0, t1 = 0.0, 100.0
    att = _attitude(20.0, 80.0)
    res = screen(GTI([t0], [t1]), t0, t1, att, None, None)
    assert res.gaps.of_origin("ATTITUDE") == GTI([0.0, 80.0], [20.0, 100.0])
    assert res.gaps.of_origin("EARTH") == GTI([t0], [t1])
    assert res.gti.exposure == 0.0


def test_bad_span():
    with pytest.raises(MXTInputError):
        screen(GTI.empty(), 10.0, 5.0, _attitude(0, 10), None, None)
