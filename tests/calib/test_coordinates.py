"""Shared geometry (:mod:`mxt_pipeline.geometry`) and the L2 event coordinate columns: round trips, and agreement with astropy's WCS (TAN)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from mxt_pipeline import constants as C
from mxt_pipeline import geometry as co
from mxt_pipeline.calib.coordinates import event_coordinates
from mxt_pipeline.datamodel import Attitude, pointing_rotation
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io.products import sky_column_keywords

from .standins import StandInTeldef

ra_st = st.floats(0.0, 359.99)
dec_st = st.floats(-89.9, 89.9)
roll_st = st.floats(0.0, 359.99)
# Off-axis offsets within the 57.9' field of view (+ a margin outside it).
off_st = st.floats(-40.0, 40.0)


def _sep_arcsec(ra1, dec1, ra2, dec2):
    return SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(SkyCoord(ra2 * u.deg, dec2 * u.deg)).arcsec


def _drifting_attitude(ra, dec, roll):
    """Ten minutes of attitude with a slow drift (2'), sampled every 10 s."""
    t = np.arange(0.0, 601.0, 10.0)
    drift = np.linspace(0.0, 2.0 / 60.0, t.size)
    return Attitude.from_pointing(t, ra + drift, np.clip(dec + drift, -89.99, 89.99), roll + 10 * drift)


@given(ra=ra_st, dec=dec_st, roll=roll_st, oy=off_st, oz=off_st, t=st.floats(0.0, 600.0))
def test_round_trip_radec_raw_radec(teldef, ra, dec, roll, oy, oz, t):
    """RA/Dec -> RAW -> RA/Dec within 0.1 arcsec (attitude interpolated at t)."""
    att = _drifting_attitude(ra, dec, roll)
    # A sky position at (oy, oz) arcmin off the boresight at time t.
    v = co.angles_to_vectors(oy, oz)
    src_ra, src_dec = co.instrument_to_radec(v, att.rotation([t]))
    rawy, rawz = co.radec_to_raw(src_ra, src_dec, t, att, teldef)
    ra2, dec2 = co.raw_to_radec(rawy, rawz, t, att, teldef)
    assert _sep_arcsec(src_ra, src_dec, ra2, dec2).max() < 0.1


@given(ra=ra_st, dec=dec_st, roll=roll_st, y=st.floats(-0.5, 255.5), z=st.floats(-0.5, 255.5))
def test_round_trip_raw_radec_raw(teldef, ra, dec, roll, y, z):
    att = Attitude.from_pointing([0.0], [ra], [dec], [roll])
    src_ra, src_dec = co.raw_to_radec(y, z, 0.0, att, teldef)
    y2, z2 = co.radec_to_raw(src_ra, src_dec, 0.0, att, teldef)
    # 1e-3 pixel = 0.014": far below the 0.1" requirement.
    np.testing.assert_allclose([y2[0], z2[0]], [y, z], atol=1e-3)


def _det_wcs(ra, dec, roll, scale_deg):
    """TAN WCS of the DET plane: pixel (DETY, DETZ) -> sky, from the pointing and roll.

    At roll 0 the instrument +Y is east and +Z north; a roll theta turns +Z from north
    through east, so +Y = E cos theta - N sin theta and +Z = E sin theta + N cos theta
    (the ATT convention): xi = DETY cos + DETZ sin, eta = -DETY sin + DETZ cos.
    """
    th = np.radians(roll)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [1.0, 1.0]  # 0-based pixel 0 = the optical axis (DET origin)
    w.wcs.cd = scale_deg * np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]])
    return w


@given(ra=ra_st, dec=st.floats(-89.0, 89.0), roll=roll_st, oy=off_st, oz=off_st)
def test_source_lands_where_astropy_wcs_puts_it(ra, dec, roll, oy, oz):
    """A known RA/Dec is seen at the DET position given by an independent astropy TAN WCS."""
    teldef = StandInTeldef()  # no offsets: DET is then exactly gnomonic
    scale = np.degrees(C.PIXEL_SIZE_MM / C.FOCAL_LENGTH_MM)
    wcs = _det_wcs(ra, dec, roll, scale)
    src = wcs.all_pix2world(np.array([[oy * 60 / C.PIXEL_SCALE_ARCSEC, oz * 60 / C.PIXEL_SCALE_ARCSEC]]), 0)
    att = Attitude.from_pointing([0.0], [ra], [dec], [roll])
    dety, detz = co.radec_to_det(src[:, 0], src[:, 1], 0.0, att, teldef)
    expect = wcs.all_world2pix(src, 0)
    # 1e-4 pixel = 1.4 milliarcsec.
    np.testing.assert_allclose([dety[0], detz[0]], expect[0], atol=1e-4)


def _sky_wcs(ra_nom, dec_nom):
    """astropy's WCS of the TCTYP/TCRVL/TCRPX/TCDLT keywords written for the L2 X/Y columns."""
    kw = sky_column_keywords(ra_nom, dec_nom)
    w = WCS(naxis=2)
    w.wcs.ctype = [kw["X"]["TCTYP"], kw["Y"]["TCTYP"]]
    w.wcs.crval = [kw["X"]["TCRVL"], kw["Y"]["TCRVL"]]
    w.wcs.crpix = [kw["X"]["TCRPX"], kw["Y"]["TCRPX"]]
    w.wcs.cdelt = [kw["X"]["TCDLT"], kw["Y"]["TCDLT"]]
    return w


@given(ra_nom=ra_st, dec_nom=st.floats(-89.5, 89.5), dx=st.floats(-300, 300), dy=st.floats(-300, 300))
def test_sky_pixels_match_astropy_wcs(ra_nom, dec_nom, dx, dy):
    """X/Y follow exactly the TCTYP/TCRVL/TCRPX/TCDLT keywords written in the L2 file."""
    w = _sky_wcs(ra_nom, dec_nom)
    pix = np.array([[co.SKY_REF_PIX + dx, co.SKY_REF_PIX + dy]])
    world = w.all_pix2world(pix, 1)  # FITS (1-based) pixels, as in the L2 columns
    x, y = co.radec_to_sky(world[:, 0], world[:, 1], ra_nom, dec_nom)
    np.testing.assert_allclose([x[0], y[0]], pix[0], atol=1e-6)
    ra, dec = co.sky_to_radec(pix[:, 0], pix[:, 1], ra_nom, dec_nom)
    assert _sep_arcsec(ra, dec, world[:, 0], world[:, 1])[0] < 1e-4


def test_sky_axes_orientation():
    """East is towards smaller X (RA increases to the left), north towards larger Y."""
    x, y = co.radec_to_sky([10.01, 10.0], [20.0, 20.01], 10.0, 20.0)
    assert x[0] < co.SKY_REF_PIX and abs(y[0] - co.SKY_REF_PIX) < 0.05
    assert y[1] > co.SKY_REF_PIX and abs(x[1] - co.SKY_REF_PIX) < 1e-9


@given(ay=st.floats(-600, 600), az=st.floats(-600, 600))
def test_angles_vectors_inverse(ay, az):
    v = co.angles_to_vectors(ay, az)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-12)
    ay2, az2 = co.vectors_to_angles(v)
    np.testing.assert_allclose([ay2[0], az2[0]], [ay, az], atol=1e-9)


@given(ra=ra_st, dec=dec_st, roll=roll_st)
def test_boresight_is_pointing(ra, dec, roll):
    rot = pointing_rotation(ra, dec, roll)
    ra2, dec2 = co.instrument_to_radec(np.array([[1.0, 0.0, 0.0]]), rot)
    assert _sep_arcsec(ra, dec, ra2, dec2)[0] < 1e-6
    v = co.radec_to_instrument(ra, dec, rot)
    np.testing.assert_allclose(v[0], [1.0, 0.0, 0.0], atol=1e-10)


def test_attitude_is_interpolated_per_event():
    """Events at different times use the attitude of their own time."""
    att = Attitude.from_pointing([0.0, 100.0], [50.0, 50.0], [10.0, 11.0], [30.0, 30.0])
    times = np.array([0.0, 25.0, 50.0, 100.0, 25.0])
    teldef = StandInTeldef()
    ra, dec = co.det_to_radec(np.zeros(5), np.zeros(5), times, att, teldef)
    ra_ref, dec_ref, _ = att.pointing(times)
    assert _sep_arcsec(ra, dec, ra_ref, dec_ref).max() < 1e-6
    # Same as rotating every event with its own scipy rotation.
    y, z = np.array([10.0, -50.0, 80.0, 3.0, 0.0]), np.array([-7.0, 60.0, 1.0, -90.0, 0.0])
    ra, dec = co.det_to_radec(y, z, times, att, teldef)
    v = co.angles_to_vectors(*teldef.det_to_angles(y, z))
    ref = co.vectors_to_radec(att.rotation(times).apply(v))
    assert _sep_arcsec(ra, dec, ref[0], ref[1]).max() < 1e-6


def test_event_coordinates_agree_with_separate_transforms(teldef):
    rng = np.random.default_rng(3)
    att = _drifting_attitude(120.0, -45.0, 70.0)
    n = 1000
    y, z = rng.uniform(0, 255, n), rng.uniform(0, 255, n)
    t = np.sort(rng.uniform(0, 600, n))
    out = event_coordinates(y, z, t, att, teldef, 120.0, -45.0)
    ra, dec = co.raw_to_radec(y, z, t, att, teldef)
    np.testing.assert_allclose(out["RA"], ra, atol=1e-12)
    np.testing.assert_allclose(out["DEC"], dec, atol=1e-12)
    x, yy = co.radec_to_sky(ra, dec, 120.0, -45.0)
    np.testing.assert_allclose(out["X"], x, atol=1e-8)
    np.testing.assert_allclose(out["Y"], yy, atol=1e-8)


def test_fixed_rotation_and_shape_errors():
    rot = pointing_rotation(0.0, 0.0, 0.0)
    ra, dec = co.det_to_radec([0.0, 0.0], [0.0, 0.0], [1.0, 2.0], rot, StandInTeldef())
    np.testing.assert_allclose(dec, 0.0, atol=1e-12)
    two = Rotation.from_quat(np.tile(rot.as_quat(), (2, 1)))
    with pytest.raises(MXTInputError):
        co.det_to_radec([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0], two, StandInTeldef())
    with pytest.raises(MXTInputError):
        co.det_to_radec([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0], rot, StandInTeldef())


def test_behind_the_telescope_is_nan():
    rot = pointing_rotation(0.0, 0.0, 0.0)
    dety, detz = co.radec_to_det([180.0, 0.5], [0.0, 0.0], 0.0, rot, StandInTeldef())
    assert np.isnan(dety[0]) and np.isnan(detz[0])
    assert np.isfinite(dety[1])
    x, y = co.radec_to_sky([180.0], [0.0], 0.0, 0.0)
    assert np.isnan(x[0]) and np.isnan(y[0])


def test_raw_pixel_convention():
    np.testing.assert_array_equal(co.raw_pixel([-0.5, -0.51, 0.49, 254.5, np.nan]), [0, -1, 0, 255, -1])


def test_poles_are_accurate():
    v = co.radec_to_vectors([0.0, 33.0], [90.0 - 1e-9, -90.0 + 1e-9])
    ra, dec = co.vectors_to_radec(v)
    np.testing.assert_allclose(dec, [90.0 - 1e-9, -90.0 + 1e-9], atol=1e-13)


@given(seed=st.integers(0, 2**32 - 1), sorted_times=st.booleans())
def test_compiled_attitude_interpolation_matches_scipy_slerp(seed, sorted_times):
    """Large rotations between samples (slerp branch), times in or out of order, clamped ends."""
    from mxt_pipeline.calib import _kernels

    if not _kernels.HAVE_NUMBA:
        pytest.skip("numba not installed")
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.uniform(0.5, 20.0, 12))
    att = Attitude.from_pointing(ts, rng.uniform(0, 360, 12), rng.uniform(-80, 80, 12), rng.uniform(0, 360, 12))
    n = 300
    t = rng.uniform(ts[0] - 5.0, ts[-1] + 5.0, n)
    if sorted_times:
        t = np.sort(t)
    y, z = rng.uniform(0, 255, n), rng.uniform(0, 255, n)
    td = StandInTeldef(rotation_deg=30.0)
    a = event_coordinates(y, z, t, att, td, 10.0, 20.0, engine="numba")
    b = event_coordinates(y, z, t, att, td, 10.0, 20.0, engine="numpy")
    assert _sep_arcsec(a["RA"], a["DEC"], b["RA"], b["DEC"]).max() < 1e-6
    ok = np.isfinite(b["X"])
    np.testing.assert_array_equal(np.isfinite(a["X"]), ok)
    np.testing.assert_allclose(a["X"][ok], b["X"][ok], rtol=1e-9, atol=1e-6)


# ---- the whole chain at the edges of the sky (issue #22, item 3) ---------------------------
#: Pointing RA anywhere, with extra weight right on either side of 0/360.
wrap_ra_st = st.one_of(
    st.floats(0.0, 360.0, exclude_max=True),
    st.floats(359.9, 360.0, exclude_max=True),
    st.floats(0.0, 0.1),
)
#: Declination anywhere, with extra weight above 80 degrees (either pole).
polar_dec_st = st.one_of(st.floats(-89.999, 89.999), st.floats(80.0, 89.999), st.floats(-89.999, -80.0))


@given(ra=wrap_ra_st, dec=polar_dec_st, roll=st.floats(0.0, 360.0, exclude_max=True),
       dra=st.floats(-0.2, 0.2), ddec=st.floats(-0.2, 0.2), engine=st.sampled_from(["numba", "numpy"]),
       seed=st.integers(0, 2**32 - 1))  # fmt: skip
def test_raw_det_sky_radec_chain_against_astropy(ra, dec, roll, dra, ddec, engine, seed):
    """RAW -> DET -> RA/Dec and SKY (X, Y) of L2 events, then back to RAW, at any RA
    (0/360 included), any declination up to the poles and any roll: RA/Dec is where an
    independent astropy TAN WCS of the DET plane puts the DET position, X/Y is where the
    astropy WCS of the L2 column keywords puts RA/Dec, and both invert to the RAW
    position.  The nominal pointing of the sky pixels may lie across 0/360 from the
    attitude."""
    if engine == "numba":
        from mxt_pipeline.calib import _kernels

        if not _kernels.HAVE_NUMBA:
            pytest.skip("numba not installed")
    teldef = StandInTeldef(centre=(130.2, 125.7), rotation_deg=90.0, flip_z=True)  # no offsets: gnomonic
    rng = np.random.default_rng(seed)
    rawy, rawz = rng.uniform(-0.5, 255.5, 40), rng.uniform(-0.5, 255.5, 40)
    att = Attitude.from_pointing([0.0, 100.0], [ra, ra], [dec, dec], [roll, roll])
    ra_nom = (ra + dra) % 360.0
    dec_nom = float(np.clip(dec + ddec, -89.999, 89.999))
    out = event_coordinates(rawy, rawz, np.full(40, 50.0), att, teldef, ra_nom, dec_nom, engine=engine)
    assert np.all((out["RA"] >= 0.0) & (out["RA"] < 360.0))
    assert np.all(np.abs(out["DEC"]) <= 90.0)
    # DET -> RA/Dec: astropy's TAN projection about the pointing, rotated by the roll.
    dety, detz = teldef.raw_to_det(rawy, rawz)
    np.testing.assert_allclose([out["DETY"], out["DETZ"]], [dety, detz], atol=1e-12)
    scale = np.degrees(C.PIXEL_SIZE_MM / C.FOCAL_LENGTH_MM)
    world = _det_wcs(ra, dec, roll, scale).all_pix2world(np.c_[dety, detz], 0)
    assert _sep_arcsec(out["RA"], out["DEC"], world[:, 0], world[:, 1]).max() < 1e-3
    # RA/Dec -> SKY: astropy's WCS of the TCTYP/TCRVL/TCRPX/TCDLT keywords of the L2 file.
    w = _sky_wcs(ra_nom, dec_nom)
    pix = w.all_world2pix(np.c_[out["RA"], out["DEC"]], 1)
    np.testing.assert_allclose(out["X"], pix[:, 0], atol=1e-5)
    np.testing.assert_allclose(out["Y"], pix[:, 1], atol=1e-5)
    # ... and back: SKY -> RA/Dec -> RAW.
    ra2, dec2 = co.sky_to_radec(out["X"], out["Y"], ra_nom, dec_nom)
    assert _sep_arcsec(ra2, dec2, out["RA"], out["DEC"]).max() < 1e-4
    y2, z2 = co.radec_to_raw(ra2, dec2, 50.0, att, teldef)
    np.testing.assert_allclose(y2, rawy, atol=1e-3)
    np.testing.assert_allclose(z2, rawz, atol=1e-3)


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_a_field_across_ra_zero_keeps_its_shape(engine):
    """A pointing at RA 0: the events east of it have RA just above 0, those west just
    below 360, and the sky image is continuous across the line (no 360 degree jump)."""
    from mxt_pipeline.calib import _kernels

    if engine == "numba" and not _kernels.HAVE_NUMBA:
        pytest.skip("numba not installed")
    teldef = StandInTeldef()
    att = Attitude.from_pointing([0.0], [0.0], [5.0], [0.0])
    rawy = np.linspace(0.0, 255.0, 256)
    rawz = np.full(256, 127.5)
    out = event_coordinates(rawy, rawz, np.zeros(256), att, teldef, 0.0, 5.0, engine=engine)
    ra = out["RA"]
    assert np.any(ra < 1.0) and np.any(ra > 359.0) and np.all((ra < 1.0) | (ra > 359.0))
    step = np.diff(out["X"])
    np.testing.assert_allclose(step, step.mean(), rtol=1e-3)  # uniform pixel steps across RA 0
    assert np.all(np.abs(out["Y"] - out["Y"][0]) < 1.0)


@given(ra1=wrap_ra_st, dec1=polar_dec_st, ra2=wrap_ra_st, dec2=polar_dec_st)
def test_angular_separation_equals_astropy(ra1, dec1, ra2, dec2):
    """Great-circle distances in arcsec, across RA 0/360 and near the poles, are
    astropy's; symmetric, zero for a point with itself."""
    got = co.angular_separation_arcsec(ra1, dec1, ra2, dec2)
    want = SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(SkyCoord(ra2 * u.deg, dec2 * u.deg)).arcsec
    assert got == pytest.approx(want, rel=1e-9, abs=1e-6)
    assert co.angular_separation_arcsec(ra2, dec2, ra1, dec1) == pytest.approx(got, rel=1e-12, abs=1e-9)
    assert co.angular_separation_arcsec(ra1, dec1, ra1, dec1) == pytest.approx(0.0, abs=1e-6)
