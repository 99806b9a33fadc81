"""Orbit, ephemerides, attitude, ANG, SAA and ground-station passes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxt_pipeline.datamodel import GTI, pointing_rotation, week_of
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.simulate.ephemeris import (
    EARTH_RADIUS_KM,
    Orbit,
    SAARegion,
    angle_between_deg,
    bad_time_from_samples,
    earth_elevation_deg,
    gmst_deg,
    met_to_jd,
    moon_direction,
    sun_direction,
)
from mxt_pipeline.simulate.operations import (
    WEEK_S,
    PassPlan,
    Pointing,
    Slew,
    _ar1,
    make_angles,
    make_attitude,
    plan_passes,
    split_into_passes,
    weekly_saa,
)

T0 = 3.0e8


def _astropy_vectors(met, body):
    from astropy.coordinates import GCRS, get_body, solar_system_ephemeris
    from astropy.time import Time
    from astropy.utils import iers

    iers.conf.auto_download = False
    t = Time(met_to_jd(met), format="jd", scale="tt")
    with solar_system_ephemeris.set("builtin"):
        c = get_body(body, t).transform_to(GCRS(obstime=t))
    ra, dec = np.radians(c.ra.deg), np.radians(c.dec.deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], -1)


def test_sun_and_moon_against_astropy():
    met = np.linspace(1.0e8, 3.5e8, 40)
    assert angle_between_deg(sun_direction(met), _astropy_vectors(met, "sun")).max() < 0.02
    # The low-precision lunar series: 0.3 deg (astropy's is geocentric too).
    assert angle_between_deg(moon_direction(met), _astropy_vectors(met, "moon")).max() < 0.4


def test_gmst_against_astropy():
    from astropy.time import Time
    from astropy.utils import iers

    iers.conf.auto_download = False
    met = np.array([1.0e8, 2.0e8, 3.0e8])
    t = Time(met_to_jd(met), format="jd", scale="tt")
    ref = t.sidereal_time("mean", "greenwich", model="IAU1982").deg
    diff = (gmst_deg(met) - ref + 180) % 360 - 180
    assert np.abs(diff).max() < 0.01  # 0.9 s of UT1-UTC at most


def test_orbit_geometry():
    o = Orbit(altitude_km=625.0, inclination_deg=30.0, raan_deg=40.0, epoch=T0)
    t = T0 + np.linspace(0, 2 * o.period_s, 500)
    p = o.position(t)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), EARTH_RADIUS_KM + 625.0)
    assert 96.0 < o.period_s / 60 < 98.5  # Kepler's third law for 625 km
    lon, lat = o.geographic(t)
    assert lat.max() == pytest.approx(30.0, abs=0.1) and lat.min() == pytest.approx(-30.0, abs=0.1)
    assert np.degrees(o.raan_rate) * 86400 == pytest.approx(-6.2, abs=0.3)
    with pytest.raises(MXTInputError):
        Orbit(altitude_km=10.0)


def test_earth_elevation_geometry():
    pos = np.array([[EARTH_RADIUS_KM + 625.0, 0.0, 0.0]])
    zenith = np.array([[1.0, 0.0, 0.0]])
    nadir = -zenith
    limb = np.degrees(np.arcsin(EARTH_RADIUS_KM / (EARTH_RADIUS_KM + 625.0)))
    assert earth_elevation_deg(zenith, pos)[0] == pytest.approx(180.0 - limb)
    assert earth_elevation_deg(nadir, pos)[0] == pytest.approx(-limb)


def test_saa_fraction_and_weeks():
    o = Orbit(epoch=T0)
    region = SAARegion()
    g = region.passages(o, T0, T0 + 86400.0)
    frac = g.exposure / 86400.0
    assert 0.05 < frac < 0.2  # low-inclination LEO: about a tenth of the time in the SAA
    lon, lat = o.geographic(0.5 * (g.start + g.stop))
    assert np.all(region.level(lon, lat) < 0)
    start = (week_of(T0) + 1) * WEEK_S - 3600.0  # observation across a week boundary
    weeks = weekly_saa(o, region, start, start + 7200.0)
    assert sorted(weeks) == [int(week_of(start)), int(week_of(start)) + 1]
    for w, tab in weeks.items():
        assert np.all(tab["START"] >= w * WEEK_S) and np.all(tab["STOP"] <= (w + 1) * WEEK_S)
        assert len(tab) > 20  # about 5-6 passages a day


@given(st.lists(st.booleans(), min_size=2, max_size=60))
def test_bad_time_from_samples_matches_mask(flags):
    t = np.arange(len(flags), dtype=float)
    bad = np.array(flags)
    g = bad_time_from_samples(t, bad)
    inside = g.contains(t[1:-1])
    np.testing.assert_array_equal(inside, bad[1:-1])


def test_ar1_matches_loop():
    rng = np.random.default_rng(0)
    w = rng.standard_normal(1000)
    ref = np.empty_like(w)
    x = 0.7
    for k, wk in enumerate(w):
        x = 0.99 * x + wk
        ref[k] = x
    np.testing.assert_allclose(_ar1(w, 0.99, 0.7), ref, rtol=1e-10, atol=1e-10)


def test_attitude_jitter_statistics():
    p = Pointing(ra=83.6, dec=22.0, roll=30.0, jitter_arcsec=3.0, jitter_tau_s=20.0)
    att = make_attitude(p, T0, T0 + 20000.0, np.random.default_rng(5), dt=1.0)
    rot0 = pointing_rotation(83.6, 22.0, 30.0)
    x = att.rotation(att["TIME"]).apply([1.0, 0.0, 0.0])
    off = angle_between_deg(x, rot0.apply([1.0, 0.0, 0.0]).reshape(1, 3)) * 3600.0
    # Two cross axes of rms 3": the offset is Rayleigh with mean 3 sqrt(pi/2) = 3.76".
    # 1000 correlation times: the mean is known to about 3 %, so a 15 % tolerance.
    assert off.mean() == pytest.approx(3.0 * np.sqrt(np.pi / 2), rel=0.15)
    assert np.allclose(np.linalg.norm(att["QPARAM"], axis=1), 1.0)
    # The quaternion sign is continuous (no flips between samples).
    q = att["QPARAM"]
    assert np.all(np.sum(q[1:] * q[:-1], axis=1) > 0)


def test_slew_then_settled():
    slew = Slew(ra=80.0, dec=22.0, roll=30.0, rate_deg_s=0.5)
    p = Pointing(ra=83.6, dec=22.0, roll=30.0, jitter_arcsec=0.0, slew=slew)
    dur = p.slew_duration()
    # An eigen-axis slew: the rotation angle between the two attitudes, 2 acos|q0.q1|.
    q0 = pointing_rotation(80.0, 22.0, 30.0).as_quat().ravel()
    q1 = pointing_rotation(83.6, 22.0, 30.0).as_quat().ravel()
    assert dur == pytest.approx(np.degrees(2 * np.arccos(abs(np.dot(q0, q1)))) / 0.5, rel=1e-6)
    att = make_attitude(p, T0, T0 + 100.0, np.random.default_rng(1), dt=0.5)
    ra, dec, roll = att.pointing(np.array([T0, T0 + dur + 1.0, T0 + 100.0]))
    assert ra[0] == pytest.approx(80.0, abs=1e-6) and ra[1] == pytest.approx(83.6, abs=1e-6)
    stable = att.stable(30.0)
    assert stable.tstart >= T0 + dur - 1.0


def test_angles_table():
    o = Orbit(epoch=T0)
    p = Pointing(ra=10.0, dec=-5.0, jitter_arcsec=0.0)
    att = make_attitude(p, T0, T0 + 6000.0, np.random.default_rng(1))
    ang = make_angles(o, att, T0, T0 + 6000.0, dt=10.0)
    assert len(ang) == 601
    e = ang["EARTH_ELV"]
    assert e.min() < 0 < e.max()  # one orbit: occulted and visible
    assert np.all((ang["SUN_ANGLE"] >= 0) & (ang["SUN_ANGLE"] <= 180))


def _hits(n_frames=20000, seed=0):
    rng = np.random.default_rng(seed)
    frame = np.sort(rng.integers(0, n_frames, 50000))
    return {
        "FRAME": frame,
        "TIME": T0 + (frame + 0.5) * 0.1,
        "RAWY": rng.integers(0, 256, frame.size),
        "RAWZ": rng.integers(0, 256, frame.size),
        "PHA": rng.integers(100, 2000, frame.size),
    }


@settings(max_examples=25)
@given(st.integers(0, 2**32 - 1))
def test_auto_passes_cover_the_observation(seed):
    rng = np.random.default_rng(seed)
    plan = PassPlan(interval_s=500.0, overlap_s=20.0, loss_probability=0.0, shuffle=True)
    passes = plan_passes(plan, T0, T0 + 2000.0, rng)
    union = GTI.empty()
    for p in passes:
        union = union.union(p.gti)
        # Boundaries on frame edges.
        for b in (p.start, p.stop):
            assert abs(((b - T0) / 0.1) - round((b - T0) / 0.1)) < 1e-6
    assert union.exposure == pytest.approx(2000.0)
    assert sorted(p.pass_id for p in passes) == list(range(1, len(passes) + 1))


def test_passes_overlap_loss_and_truncation():
    rng = np.random.default_rng(11)
    plan = PassPlan(interval_s=400.0, overlap_s=30.0, loss_probability=1.0, loss_fraction=0.1,
                    truncate_probability=1.0, shuffle=True)  # fmt: skip
    specs = plan_passes(plan, T0, T0 + 2000.0, rng)
    assert [p.pass_id for p in sorted(specs, key=lambda p: p.start)] != sorted(p.pass_id for p in specs) or len(specs) < 3
    hits = _hits()
    l1 = split_into_passes(hits, specs, np.random.default_rng(3), obs_id="X1")
    n_cover = np.zeros(hits["TIME"].size, dtype=int)
    for p, raw in zip(specs, l1):
        assert raw.meta["PASS_ID"] == p.pass_id
        assert np.all(p.gti.contains(raw["TIME"]))
        n_cover += p.gti.contains(hits["TIME"])
    assert n_cover.max() == 2  # overlaps duplicate frames
    lost = [iv for p in specs for iv in p.lost]
    assert len(lost) == len(specs)
    # Truncated last frames: the copy in the pass has fewer hits than the frame.
    for p, raw in zip(specs, l1):
        if p.truncate_last_frame and len(raw):
            last = raw["FRAME"].max()
            full = (hits["FRAME"] == last).sum()
            if full >= 2:  # a frame of one hit cannot be cut
                assert (raw["FRAME"] == last).sum() < full


def test_explicit_passes_and_errors():
    plan = PassPlan(mode="explicit", passes=({"start": T0, "stop": T0 + 100, "pass_id": 7, "station": "X"},
                                             {"start": T0 + 90, "stop": T0 + 200, "lost": [[T0 + 120, T0 + 130]]}))
    specs = plan_passes(plan, T0, T0 + 200, np.random.default_rng(0))
    assert [p.pass_id for p in specs] == [7, 2] and specs[0].station == "X"
    assert specs[1].gti.exposure == pytest.approx(100.0)
    with pytest.raises(MXTInputError):
        PassPlan(mode="explicit")
    with pytest.raises(MXTInputError):
        PassPlan(loss_probability=2.0)
    with pytest.raises(MXTInputError):
        plan_passes(PassPlan(mode="explicit", passes=({"start": 1, "stop": 0},)), 0, 10, np.random.default_rng(0))
    with pytest.raises(MXTInputError):
        Pointing(ra=0.0, dec=95.0)
