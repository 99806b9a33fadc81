"""CALDB models: FITS round trips, physical invariants, independent references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from mxt_pipeline import constants as C
from mxt_pipeline.caldb.products import (
    BadPixels,
    CaldbMeta,
    CalibrationSet,
    CTIModel,
    EffectiveArea,
    GainOffset,
    Multiplicity,
    PatternModel,
    PSFModel,
    Systematics,
    Teldef,
    Vignetting,
    load_calibration,
)
from mxt_pipeline.errors import MXTCaldbError, MXTCalibrationError, MXTFormatError
from mxt_pipeline.io import get_spec, validate_file

finite = st.floats(-1e3, 1e3, allow_nan=False)
positive = st.floats(0.05, 500.0, allow_nan=False)


@pytest.fixture(scope="module")
def calset():
    """The bundled calibration set valid at mission time 3e8 (2026-07-05)."""
    return CalibrationSet.from_caldb(None, 3.0e8)


# ---- round trips -----------------------------------------------------------------------------


def assert_same_tables(a, b, content):
    """Tables equal column by column, at the precision of the file's format."""
    spec = get_spec(content)
    ta, tb = a.to_tables(), b.to_tables()
    assert ta.keys() == tb.keys()
    for ext, cols in ta.items():
        h = spec.hdu(ext)
        for name, values in cols.items():
            dtype = h.column(name).dtype
            np.testing.assert_array_equal(np.asarray(values).astype(dtype), np.asarray(tb[ext][name]).astype(dtype),
                                          err_msg=f"{ext}.{name}")  # fmt: skip
    ka, kb = a.header_keywords(), b.header_keywords()
    assert ka.keys() == kb.keys()
    for ext in ka:  # header floats keep 15 significant digits
        assert kb[ext] == pytest.approx(ka[ext], rel=1e-14)


def round_trip(model, tmp_path, name="m.fits"):
    meta = CaldbMeta(vsd="2025-02-03", vst="04:05:06", description="round trip", boundaries=("ENERGY(0.2-10)keV",))
    path = model.to_fits(tmp_path / name, meta)
    assert validate_file(path) == []
    back = type(model).from_fits(path)
    assert back.path == path
    assert back.meta.vsd == "2025-02-03" and back.meta.vst == "04:05:06"
    assert back.meta.boundaries == ("ENERGY(0.2-10)keV",)
    assert_same_tables(model, back, model.CONTENT)
    return back


@settings(max_examples=20)
@given(cy=finite, cz=finite, rot=st.floats(-180, 180), fy=st.booleans(), fz=st.booleans(),
       oy=st.floats(-5, 5), oz=st.floats(-5, 5), focal=st.floats(100, 5000))  # fmt: skip
def test_teldef_round_trip(tmp_path_factory, cy, cz, rot, fy, fz, oy, oz, focal):
    td = Teldef(focal_mm=focal, centre=(cy, cz), rotation_deg=rot, flip_y=fy, flip_z=fz, offset_arcmin=(oy, oz))
    back = round_trip(td, tmp_path_factory.mktemp("td"))
    y = np.linspace(-10, 260, 7)
    for f in ("raw_to_det", "det_to_raw", "det_to_angles", "angles_to_det"):
        np.testing.assert_array_equal(getattr(td, f)(y, y[::-1]), getattr(back, f)(y, y[::-1]))


@st.composite
def psf_models(draw):
    ne, nt = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    energy = np.cumsum(draw(st.lists(st.floats(0.1, 3.0), min_size=ne, max_size=ne)))
    theta = np.cumsum(draw(st.lists(st.floats(0.5, 20.0), min_size=nt, max_size=nt))) - 0.5
    shape = (ne, nt)
    w = np.asarray(draw(st.lists(st.floats(0.01, 1.0), min_size=4, max_size=4)))
    w = w / w.sum()
    params = {k: np.full(shape, draw(positive)) for k in ("spot_sigma", "arm_gamma", "arm_sigma", "halo_sigma")}
    params.update({k: np.full(shape, v) for k, v in zip(("f_spot", "f_arm_y", "f_arm_z", "f_halo"), w)})
    return PSFModel(energy, theta, params)


@settings(max_examples=15)
@given(psf=psf_models())
def test_psf_round_trip(tmp_path_factory, psf):
    back = round_trip(psf, tmp_path_factory.mktemp("psf"))
    np.testing.assert_array_equal(psf.density([0.0, 3.0], [1.0, -2.0], 1.0, 2.0),
                                  back.density([0.0, 3.0], [1.0, -2.0], 1.0, 2.0))  # fmt: skip


@settings(max_examples=15)
@given(n=st.integers(1, 30), data=st.data())
def test_effarea_vignet_cti_multiplicity_round_trip(tmp_path_factory, n, data):
    tmp = tmp_path_factory.mktemp("x")
    edges = np.cumsum(data.draw(st.lists(st.floats(0.01, 1.0), min_size=n + 1, max_size=n + 1)))
    area = data.draw(st.lists(st.floats(0, 100), min_size=n, max_size=n))
    round_trip(EffectiveArea(edges[:-1], edges[1:], area), tmp, "a.arf")
    energy = edges[:n] + 0.1
    theta = np.r_[0.0, np.cumsum(data.draw(st.lists(st.floats(1, 20), min_size=2, max_size=2)))]
    vig = data.draw(st.lists(st.floats(0, 1), min_size=3 * n, max_size=3 * n))
    round_trip(Vignetting(energy, theta, np.reshape(vig, (n, 3))), tmp, "v.fits")
    cti = data.draw(st.lists(st.floats(1e-7, 1e-3), min_size=n, max_size=n))
    round_trip(CTIModel(energy, cti), tmp, "c.fits")
    k = data.draw(st.lists(st.floats(0.9, 1.5), min_size=4 * n, max_size=4 * n))
    round_trip(Multiplicity(energy, np.reshape(k, (4, n))), tmp, "m.fits")


@settings(max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), npix=st.integers(0, 40))
def test_detector_models_round_trip(tmp_path_factory, seed, npix):
    tmp = tmp_path_factory.mktemp("d")
    rng = np.random.default_rng(seed)
    round_trip(GainOffset(rng.uniform(1, 10, C.N_PIX), rng.normal(100, 10, C.N_PIX)), tmp, "g.fits")
    pix = rng.choice(C.N_PIX**2, npix, replace=False)
    bp = round_trip(BadPixels(np.column_stack([pix // C.N_PIX, pix % C.N_PIX]), rng.integers(1, 4, npix)), tmp, "b.fits")
    assert bp.mask().sum() == npix
    split = rng.uniform(0, 0.1)
    e = np.sort(rng.uniform(0.1, 20, 5))
    pat = PatternModel(split + rng.uniform(0, 0.2), split, rng.uniform(0, 20), e, rng.uniform(1, 30, 5),
                       imaging=sorted(rng.choice(13, 5, replace=False)), spectral=(0, 1))  # fmt: skip
    back = round_trip(pat, tmp, "p.fits")
    assert (back.primary_threshold, back.split_threshold, back.read_noise_ev) == pytest.approx(
        (pat.primary_threshold, pat.split_threshold, pat.read_noise_ev), rel=1e-14)  # fmt: skip
    assert back.imaging == pat.imaging and back.spectral == (0, 1)
    back = round_trip(Systematics(rng.uniform(0, 100), rng.uniform(0.5, 0.99)), tmp, "s.fits")
    assert back.localization_arcsec == pytest.approx(back.combine(0.0))


def test_systematics_with_dc_levels_round_trip(tmp_path):
    levels = {"DET_ML": [10.5, 12.0, 30.0], "DC68": [3.0, 2.5, 2.3], "DC90": [7.0, 5.5, 4.61]}
    kw = {"CALMETH": "test", "SIMSEED": 3, "AMP90": 0.5}
    back = Systematics(25.0, 0.9, levels, kw).to_fits(tmp_path / "s.fits")
    model = Systematics.from_fits(back)
    for col, values in levels.items():
        np.testing.assert_array_equal(model.levels[col], values)
    assert model.levels_keywords == kw
    # A file without the table reads as no calibration (Wilks' levels in the detection).
    assert Systematics.from_fits(Systematics(25.0).to_fits(tmp_path / "plain.fits")).levels is None


@pytest.mark.parametrize(
    ("levels", "column"),
    [
        ({"DET_ML": [1.0, 1.0], "DC68": [2.3, 2.3], "DC90": [4.6, 4.6]}, "DET_ML"),
        ({"DET_ML": [1.0, 2.0], "DC68": [2.3, 5.0], "DC90": [4.6, 4.6]}, "DC90"),
        ({"DET_ML": [1.0, 2.0], "DC68": [2.3, np.nan], "DC90": [4.6, 4.6]}, "DC68"),
        ({"DET_ML": [1.0, 2.0], "DC90": [4.6, 4.6]}, "DC68"),
    ],
)
def test_bad_dc_levels_name_the_column(tmp_path, levels, column):
    with pytest.raises(MXTCalibrationError) as info:
        Systematics(25.0, 0.9, levels)
    assert info.value.hdu == "DCLEVELS" and info.value.column == column


def test_matrix_round_trip(tmp_path, calset):
    back = round_trip(calset.matrix, tmp_path, "m.rmf")
    np.testing.assert_array_equal(back.dense(), calset.matrix.dense())


def test_other_instrument_teldef_reads(tmp_path):
    td = Teldef(focal_mm=3600.0, pixel_mm=0.0135, n_pix=(2048, 2048), centre=(1023.5, 1023.5))
    path = td.to_fits(tmp_path / "vt.fits", CaldbMeta(instrume="VT"))
    assert Teldef.from_fits(path).n_pix == (2048, 2048)


# ---- errors -----------------------------------------------------------------------------------


def test_wrong_product_type_is_refused(tmp_path):
    path = Systematics().to_fits(tmp_path / "s.fits")
    with pytest.raises(MXTFormatError, match="CALDB_PSF"):
        PSFModel.from_fits(path)


def test_invalid_content_names_file_hdu_and_column(tmp_path, calset):
    psf = calset.psf
    bad = PSFModel(psf.energy, psf.theta, psf.params)
    bad.params["f_halo"] = bad.params["f_halo"] + 0.1  # fractions no longer sum to 1
    path = bad.to_fits(tmp_path / "bad.fits")
    with pytest.raises(MXTCalibrationError) as info:
        PSFModel.from_fits(path)
    assert info.value.file == str(path) and info.value.hdu == "PSF" and info.value.column == "F_SPOT"


def test_load_calibration_dispatches_by_code(calset):
    from mxt_pipeline.datapaths import bundled_caldb_dir

    path = bundled_caldb_dir() / calset.files["SYSERR"]
    assert isinstance(load_calibration("syserr", path), Systematics)
    with pytest.raises(MXTCaldbError, match="no calibration model"):
        load_calibration("NOPE", path)


# ---- physical invariants and independent references -------------------------------------------


@settings(max_examples=50)
@given(y=st.floats(-300, 600), z=st.floats(-300, 600))
def test_teldef_transforms_are_inverse(calset, y, z):
    td = calset.teldef
    dy, dz = td.raw_to_det(y, z)
    ay, az = td.det_to_angles(dy, dz)
    dy2, dz2 = td.angles_to_det(ay, az)
    y2, z2 = td.det_to_raw(dy2, dz2)
    np.testing.assert_allclose([dy2, dz2], [dy, dz], atol=1e-9)
    np.testing.assert_allclose([y2, z2], [y, z], atol=1e-9)


def test_teldef_against_explicit_geometry(calset):
    """DET offsets are the rotated RAW offsets; angles follow atan(d p / f) plus the boresight."""
    td = calset.teldef
    y, z = np.array([0.0, 255.0, 100.0]), np.array([255.0, 0.0, 30.0])
    th = np.radians(td.rotation_deg)
    ey = np.cos(th) * (y - td.centre[0]) - np.sin(th) * (z - td.centre[1])
    ez = np.sin(th) * (y - td.centre[0]) + np.cos(th) * (z - td.centre[1])
    np.testing.assert_allclose(td.raw_to_det(y, z), [ey, ez], atol=1e-12)
    ay, _ = td.det_to_angles(ey, ez)
    np.testing.assert_allclose(ay, np.degrees(np.arctan(ey * 0.075 / 1140.0)) * 60 + td.offset[0], atol=1e-12)
    # the chip spans the public 57' field of view
    half = td.det_to_angles(128.0, 0.0)[0] - td.offset[0]
    assert 2 * half == pytest.approx(57.0, abs=1.0)


@pytest.mark.parametrize("energy,theta", [(0.3, 0.0), (1.5, 0.0), (1.5, 25.0), (6.0, 10.0), (10.0, 60.0)])
def test_psf_is_normalised(calset, energy, theta):
    """Pixel fractions over a +-L box equal the analytic mass inside it (Cauchy arm tails
    outside), and the density integrated by scipy agrees on a sub-box."""
    psf = calset.psf
    p = {k: float(v) for k, v in psf.parameters(energy, theta).items()}
    half = 4000.0
    edges = np.linspace(-half, half, 801)
    total = psf.pixel_fractions(edges, edges, 0.0, 0.0, energy, theta).sum()
    arm_in = 2.0 / np.pi * np.arctan(half / p["arm_gamma"])
    expected = p["f_spot"] + p["f_halo"] + (p["f_arm_y"] + p["f_arm_z"]) * arm_in
    assert total == pytest.approx(expected, abs=1e-9)
    assert sum(p[k] for k in ("f_spot", "f_arm_y", "f_arm_z", "f_halo")) == pytest.approx(1.0, abs=1e-12)
    box = (-10.0, 25.0, -30.0, 5.0)
    ref, _ = integrate.dblquad(lambda z, y: float(psf.density(y, z, energy, theta)), box[0], box[1], box[2], box[3],
                               epsabs=1e-10)  # fmt: skip
    frac = psf.pixel_fractions(np.array(box[:2]), np.array(box[2:]), 0.0, 0.0, energy, theta)
    assert frac.sum() == pytest.approx(ref, rel=1e-7)


def test_psf_has_the_lobster_eye_shape(calset):
    """Spot FWHM 11' at 1.5 keV on axis; the cross arms make the density along the axes far
    above the density along the diagonals at the same distance; fewer double reflections
    at high energy; the spot widens off axis."""
    psf = calset.psf
    assert psf.fwhm_spot(1.5, 0.0) * C.PIXEL_SCALE_ARCSEC / 60.0 == pytest.approx(11.0, rel=1e-4)
    r = 150.0
    axis = psf.density(r, 0.0, 1.5)
    diag = psf.density(r / np.sqrt(2), r / np.sqrt(2), 1.5)
    assert axis > 5 * diag
    f = psf.fractions([0.5, 2.0, 8.0])
    assert np.all(np.diff(f[:, 0]) < 0) and np.all(np.diff(f[:, 3]) > 0)
    assert psf.fwhm_spot(1.5, 40.0) > psf.fwhm_spot(1.5, 0.0)


def test_psf_sampler_follows_the_marginal_cdf(calset):
    """KS test of sampled DETY offsets against the analytic marginal CDF (scipy.stats)."""
    psf = calset.psf
    rng = np.random.default_rng(7)
    energy, theta = 2.0, 12.0
    dy, dz = psf.sample(np.full(20000, energy), np.full(20000, theta), rng)
    p = {k: float(v) for k, v in psf.parameters(energy, theta).items()}

    def cdf(x):
        return (p["f_spot"] * stats.norm.cdf(x, scale=p["spot_sigma"]) + p["f_arm_y"] * stats.cauchy.cdf(x, scale=p["arm_gamma"])
                + p["f_arm_z"] * stats.norm.cdf(x, scale=p["arm_sigma"]) + p["f_halo"] * stats.norm.cdf(x, scale=p["halo_sigma"]))  # fmt: skip

    assert stats.kstest(dy, cdf).pvalue > 1e-3
    assert stats.ks_2samp(dy, dz).pvalue > 1e-3  # the two arms have the same weights here


def test_effective_area_curve(calset):
    ea = calset.effarea
    e = np.linspace(0.2, 10.0, 2000)
    a = ea(e)
    assert np.all(a > 0)
    assert ea(np.array([0.1, 10.5])).tolist() == [0.0, 0.0]
    e_peak, a_peak = ea.peak()
    assert a_peak == pytest.approx(27.0) and 0.8 < e_peak < 1.5
    for edge in (0.284, 0.543, 1.560, 1.839, 2.04):  # C, O, Al, Si K and Ir M: the area drops across each
        assert ea(edge + 0.015) < ea(edge - 0.015)


def test_vignetting(calset):
    v = calset.vignet
    theta = np.linspace(0, 90, 91)
    for energy in (0.3, 1.0, 5.0, 10.0):
        vals = v(energy, theta)
        assert vals[0] == 1.0 and np.all(vals <= 1.0) and np.all(np.diff(vals) < 0)
    assert v(1.0, 30.0) == pytest.approx(0.8, rel=1e-6)
    assert v(8.0, 25.0) < v(1.0, 25.0)


def test_rmf_rows_are_normalised_gaussians(calset):
    m = calset.matrix
    np.testing.assert_allclose(m.row_sums(), 1.0, atol=2e-6)
    fwhm = m.fwhm(np.array([0.5, 1.5, 6.0]))
    assert fwhm[1] == pytest.approx(0.078, abs=0.002) and fwhm[1] < 0.080
    assert fwhm[0] < fwhm[1] < fwhm[2]
    i = int(np.searchsorted(m.energ_lo, 1.5))
    e = 0.5 * (m.energ_lo[i] + m.energ_hi[i])
    row = m.dense()[i]
    sig = fwhm[1] / 2.3548
    ref = stats.norm.cdf(m.e_max, e, sig) - stats.norm.cdf(m.e_min, e, sig)
    np.testing.assert_allclose(row, ref, atol=3e-4)
    counts = m.fold(np.eye(m.energ_lo.size)[i])
    np.testing.assert_allclose(counts, row)
    ch = m.sample_channels(np.full(20000, e), np.random.default_rng(1))
    assert np.mean(ch) * 0.01 + 0.005 == pytest.approx(e, abs=0.002)


@settings(max_examples=50)
@given(energy=st.floats(0.05, 15.0), rawz=st.integers(0, 255))
def test_cti_correct_inverts_apply(calset, energy, rawz):
    cti = calset.cti
    measured = cti.apply(energy, rawz)
    assert measured < energy
    assert float(cti.correct(measured, rawz)) == pytest.approx(energy, rel=1e-11)


def test_cti_magnitude(calset):
    assert float(calset.cti.cti(1.5)) == pytest.approx(1.3e-5, rel=1e-5)
    assert calset.cti.cti(0.5) > calset.cti.cti(5.0)


@settings(max_examples=50)
@given(energy=st.floats(0.0, 12.0), rawy=st.integers(0, 255))
def test_gain_offset_inverse(calset, energy, rawy):
    g = calset.gainoff
    assert float(g.to_energy(g.to_pha(energy, rawy), rawy)) == pytest.approx(energy, abs=1e-12)


def test_multiplicity_against_monte_carlo(calset):
    """k_m(E) against random impact points and scipy's normal CDF (independent of the grid)."""
    pat, mult = calset.pattern, calset.multiplicity
    rng = np.random.default_rng(3)
    for energy in (0.5, 2.0, 6.0):
        s = float(pat.cloud_sigma_um(energy)) / 75.0
        u, v = rng.random(40000), rng.random(40000)

        def shares(x, s=s):
            lo, hi = stats.norm.cdf(-x / s), stats.norm.sf((1 - x) / s)
            return np.stack([lo, 1 - lo - hi, hi], 1)

        hits = energy * (shares(u)[:, :, None] * shares(v)[:, None, :]).reshape(-1, 9)
        above = hits >= pat.split_threshold
        m = above.sum(1)
        e_sum = np.where(above, hits, 0).sum(1)
        ok = hits.max(1) >= pat.primary_threshold
        for k in (1, 2):
            sel = ok & (m == k)
            if sel.sum() > 500:
                assert float(mult.factor(energy, k)) == pytest.approx(energy / e_sum[sel].mean(), rel=3e-3)


def test_pattern_bad_pixels_systematics(calset):
    pat = calset.pattern
    assert 0 < pat.split_threshold < pat.primary_threshold < C.ENERGY_MIN_KEV
    assert pat.imaging == tuple(range(13)) and pat.spectral == tuple(range(5))
    bp = calset.badpix
    assert bp.mask().sum() == len(np.unique(bp.pixels, axis=0)) == len(bp)
    assert calset.syserr.localization_arcsec == 25.0
    assert calset.syserr.combine(60.0) == pytest.approx(65.0)


def test_detection_recovers_the_psf_terms_exactly(calset):
    """The detection's separable tables of the CALDB PSF equal its exact pixel integrals."""
    from mxt_pipeline.detect.bandpsf import DetectionCalibration
    from mxt_pipeline.detect.bands import EnergyBand

    dc = DetectionCalibration.from_calset(calset)
    assert dc.syserr_arcsec == 25.0
    # The bundled SYSERR carries the Monte-Carlo calibrated dC levels: raised at the
    # DET_ML threshold, Wilks' far above it.
    levels = dc.error_levels
    assert not levels.is_wilks and levels.origin.startswith("CALDB mxt_syserr_")
    l68, l90 = levels.at(levels.det_ml[0])
    assert l90 > 4.61 and l68 > 2.29
    assert levels.at(1e4) == pytest.approx((2.2958, 4.6052), rel=1e-4)
    band = dc.band_psfs([EnergyBand(0.3, 2.0)])[0]
    edges = np.arange(-40.0, 41.0)
    t = band.terms(edges, edges, np.array([0.3]), np.array([-0.2]), 5.0)
    img = np.einsum("sr,sry,srz->syz", t.w, t.fy, t.fz)[0]
    np.testing.assert_allclose(img, band.pixel_fractions(edges, edges, 0.3, -0.2, 5.0), atol=1e-9)
