"""detect_sources on event lists: positions in RA/Dec, rates, radii, empty fields."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mxt_pipeline import geometry as coords
from mxt_pipeline.calib.coordinates import event_coordinates
from mxt_pipeline.datamodel import GTI, Attitude, EventList
from mxt_pipeline.detect.bandpsf import DetectionCalibration
from mxt_pipeline.detect.bands import DEFAULT_BANDS
from mxt_pipeline.detect.pipeline import DetectionParameters, affine_sky_mapping, detect_sources
from mxt_pipeline.detect.radii import quality_factor

from .psf_double import AnalyticLobsterPSF
from .teldef_double import FlatTeldef

RA_NOM, DEC_NOM, ROLL = 150.0, -30.0, 40.0


def _observation(rng, sources, bkg_per_pixel=0.02, exposure=1000.0, drift_deg=0.0, calset=None, t0=0.0):
    """Events of point sources (DET position, counts) plus a flat background.

    The pointing is (RA_NOM, DEC_NOM, ROLL), optionally drifting in RA during the
    observation; each event's RA/Dec and sky X/Y are computed from its DET position at
    its time, as the calibration chain does.  Photons are scattered with the analytic
    PSF double through a flat TELDEF, or with the PSF and TELDEF of ``calset`` (a CALDB
    ``CalibrationSet``: ``psf.sample(energy, theta, rng)`` at each photon's energy and
    the source's off-axis angle); events off the chip are dropped.  The observation
    starts at mission time ``t0`` (s).
    """
    if calset is None:
        psf, tel = AnalyticLobsterPSF(), FlatTeldef()

        def scatter(k, energy, y0, z0):
            return psf.sample(k, rng)
    else:
        tel = calset.teldef

        def scatter(k, energy, y0, z0):
            ay, az = tel.det_to_angles(y0, z0)
            return calset.psf.sample(energy, np.full(k, float(np.hypot(ay, az))), rng)
    times = t0 + np.linspace(0.0, exposure, 51)
    att = Attitude.from_pointing(times, RA_NOM + np.linspace(0, drift_deg, 51), np.full(51, DEC_NOM), np.full(51, ROLL))
    ref = att.rotation(np.array([t0 + exposure / 2]))
    ys, zs, es, ts = [], [], [], []
    truth = []
    for y0, z0, n in sources:
        # The sky position seen at DET (y0, z0) by the mid-time pointing.
        ra0, dec0 = coords.det_to_radec(y0, z0, t0 + exposure / 2, ref, tel)
        truth.append((float(ra0[0]), float(dec0[0])))
        k = rng.poisson(n)
        t = rng.uniform(t0, t0 + exposure, k)
        dy, dz = coords.radec_to_det(np.full(k, ra0[0]), np.full(k, dec0[0]), t, att, tel)
        energy = rng.uniform(0.3, 9.5, k)
        oy, oz = scatter(k, energy, y0, z0)
        ys.append(dy + oy)
        zs.append(dz + oz)
        es.append(energy)
        ts.append(t)
    nb = rng.poisson(bkg_per_pixel * 256 * 256)
    by, bz = tel.raw_to_det(rng.uniform(-0.5, 255.5, nb), rng.uniform(-0.5, 255.5, nb))
    ys.append(np.asarray(by, float))
    zs.append(np.asarray(bz, float))
    es.append(rng.uniform(0.3, 9.5, nb))
    ts.append(rng.uniform(t0, t0 + exposure, nb))
    y, z, e, t = (np.concatenate(a) for a in (ys, zs, es, ts))
    rawy, rawz = (np.asarray(v, float) for v in tel.det_to_raw(y, z))
    on = (rawy > -0.5) & (rawy < 255.5) & (rawz > -0.5) & (rawz < 255.5)
    y, z, e, t, rawy, rawz = y[on], z[on], e[on], t[on], rawy[on], rawz[on]
    order = np.argsort(t)
    y, z, e, t, rawy, rawz = y[order], z[order], e[order], t[order], rawy[order], rawz[order]
    cols = event_coordinates(rawy, rawz, t, att, tel, RA_NOM, DEC_NOM)
    n = len(t)
    ev = EventList.from_columns(
        meta={"OBS_ID": "TEST", "RA_NOM": RA_NOM, "DEC_NOM": DEC_NOM},
        TIME=t,
        FRAME=((t - t0) / 0.1).astype(int),
        RAWY=coords.raw_pixel(rawy),
        RAWZ=coords.raw_pixel(rawz),
        DETY=cols["DETY"],
        DETZ=cols["DETZ"],
        X=cols["X"],
        Y=cols["Y"],
        RA=cols["RA"],
        DEC=cols["DEC"],
        PHA=np.zeros(n, int),
        PI=(e * 100).astype(int),
        ENERGY=e,
        PATTERN=np.zeros(n, int),
        MULTIPLICITY=np.ones(n, int),
        STATUS=np.zeros(n, int),
    )
    ev.gti = GTI([t0], [t0 + exposure])
    if calset is None:
        cal = DetectionCalibration(psf=psf, teldef=tel, bad_mask=None, syserr_arcsec=25.0)
    else:
        cal = DetectionCalibration.from_calset(calset)
    return ev, cal, att, truth


def _sep_arcsec(ra1, dec1, ra2, dec2):
    v1 = coords.radec_to_vectors(ra1, dec1)
    v2 = coords.radec_to_vectors(ra2, dec2)
    return np.degrees(np.arccos(np.clip(np.sum(v1 * v2, axis=1), -1, 1))) * 3600.0


@pytest.mark.parametrize("use_attitude", [False, True])
def test_two_sources_in_ra_dec(use_attitude):
    rng = np.random.default_rng(1)
    ev, cal, att, truth = _observation(rng, [(20.0, -30.0, 400), (-50.0, 60.0, 150)])
    table = detect_sources(ev, cal, DEFAULT_BANDS, attitude=att if use_attitude else None)
    assert len(table) == 2
    assert np.all(np.diff(table["DET_ML"]) <= 0)  # sorted by decreasing DET_ML
    assert list(table["SRC_ID"]) == [1, 2]
    for (ra, dec), row_ra, row_dec, r90 in zip(truth, table["RA"], table["DEC"], table["R90_STAT"]):
        # Within 2.5 statistical R90 (about 5.4 sigma).
        assert _sep_arcsec(ra, dec, row_ra, row_dec)[0] < 2.5 * r90
    # Radii include the 25" systematic; QF follows ERR_R90.
    assert np.all(table["ERR_R90"] >= 25.0) and np.all(table["ERR_R68"] < table["ERR_R90"])
    assert np.array_equal(table["QF"], quality_factor(table["ERR_R90"]))
    # Rates: counts over the live time (no vignetting given), summed over bands.
    assert np.allclose(table["RATE"], np.asarray(table["COUNTS"]).sum(axis=1) / 1000.0, rtol=1e-5)
    assert table["COUNTS"].shape == (2, 2)
    # The brighter source first, with about its counts (PSF fraction on the chip ~1).
    assert np.asarray(table["COUNTS"])[0].sum() == pytest.approx(400, rel=0.25)
    assert table.meta["SYSERR"] == 25.0


def test_drifting_pointing_needs_the_attitude():
    # A 0.05-degree drift (13 pixels) during the exposure: with the attitude the source
    # is re-projected and found where it is; its DET-frame image is smeared without.
    rng = np.random.default_rng(2)
    ev, cal, att, truth = _observation(rng, [(10.0, 5.0, 500)], drift_deg=0.05)
    with_att = detect_sources(ev, cal, attitude=att)
    assert len(with_att) >= 1
    sep = _sep_arcsec(truth[0][0], truth[0][1], with_att["RA"][0], with_att["DEC"][0])[0]
    assert sep < 2.5 * with_att["R90_STAT"][0]
    without = detect_sources(ev, cal)
    assert with_att["R90_STAT"][0] < without["R90_STAT"][0]


def test_empty_field_gives_an_empty_table():
    rng = np.random.default_rng(3)
    ev, cal, _, _ = _observation(rng, [], bkg_per_pixel=0.02)
    table = detect_sources(ev, cal, params=DetectionParameters(det_ml_threshold=15.0))
    assert len(table) == 0
    assert "COUNTS" in table.colnames and table["COUNTS"].shape == (0, 2)


def test_affine_sky_mapping_reproduces_the_event_columns():
    rng = np.random.default_rng(4)
    ev, _, _, _ = _observation(rng, [(0.0, 0.0, 100)])
    sky = affine_sky_mapping(ev)
    x, y = sky(ev["DETY"], ev["DETZ"])
    assert np.max(np.hypot(x - ev["X"], y - ev["Y"])) < 0.05


def test_missing_nominal_pointing_is_an_error():
    rng = np.random.default_rng(5)
    ev, cal, _, _ = _observation(rng, [(0.0, 0.0, 100)])
    del ev.meta["RA_NOM"]
    from mxt_pipeline.errors import MXTInputError

    with pytest.raises(MXTInputError):
        detect_sources(ev, cal)


def test_fixed_rotation_attitude_gives_the_same_positions():
    # A constant pointing given as an Attitude and no attitude at all agree.
    rng = np.random.default_rng(6)
    ev, cal, _, truth = _observation(rng, [(30.0, 30.0, 300)])
    rot = Rotation.from_quat(np.asarray(Attitude.from_pointing([0.0], [RA_NOM], [DEC_NOM], [ROLL])["QPARAM"])[0])
    att = Attitude.from_pointing([0.0, 1000.0], [RA_NOM, RA_NOM], [DEC_NOM, DEC_NOM], [ROLL, ROLL])
    a = detect_sources(ev, cal, attitude=att)
    b = detect_sources(ev, cal)
    assert rot is not None
    assert _sep_arcsec(a["RA"][0], a["DEC"][0], b["RA"][0], b["DEC"][0])[0] < 1.0
