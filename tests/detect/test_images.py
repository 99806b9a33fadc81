"""Band images in DET coordinates and exposure maps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxt_pipeline import geometry as coords
from mxt_pipeline.datamodel import GTI, Attitude, EventList
from mxt_pipeline.detect.bands import DEFAULT_BANDS, EnergyBand, as_bands, parse_bands
from mxt_pipeline.detect.images import (
    REJECT_STATUS,
    attitude_clusters,
    bin_events,
    build_images,
    chip_coverage,
    detector_grid,
    select_events,
)
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io.formats import STATUS_BITS

from .teldef_double import FlatTeldef


def make_events(dety, detz, energy, time, teldef, *, status=None, pattern=None, attitude=None, gti=None):
    """An EventList with consistent RAW, DET and (with an attitude) RA/Dec columns."""
    n = len(dety)
    dety = np.asarray(dety, float)
    detz = np.asarray(detz, float)
    rawy, rawz = teldef.det_to_raw(dety, detz)
    if attitude is not None:
        ra, dec = coords.det_to_radec(dety, detz, time, attitude, teldef)
    else:
        ra, dec = np.zeros(n), np.zeros(n)
    ev = EventList.from_columns(
        meta={"OBS_ID": "T", "RA_NOM": 0.0, "DEC_NOM": 0.0},
        TIME=np.asarray(time, float),
        FRAME=np.zeros(n, int),
        RAWY=np.clip(coords.raw_pixel(rawy), 0, 255),
        RAWZ=np.clip(coords.raw_pixel(rawz), 0, 255),
        DETY=dety,
        DETZ=detz,
        X=np.zeros(n),
        Y=np.zeros(n),
        RA=ra,
        DEC=dec,
        PHA=np.zeros(n, int),
        PI=np.zeros(n, int),
        ENERGY=np.asarray(energy, float),
        PATTERN=np.zeros(n, int) if pattern is None else pattern,
        MULTIPLICITY=np.ones(n, int),
        STATUS=np.zeros(n, int) if status is None else status,
    )
    ev.gti = gti if gti is not None else GTI([float(np.min(time)) - 1.0], [float(np.max(time)) + 1.0])
    return ev


def test_band_parsing():
    assert parse_bands("0.2-2,2-10") == DEFAULT_BANDS
    assert as_bands(None) == DEFAULT_BANDS
    assert as_bands([(0.5, 1.0)]) == (EnergyBand(0.5, 1.0),)
    for bad in ("2-1", "a-b", "0.2-2-3", "0.2-3,2-10", ""):
        with pytest.raises(MXTInputError):
            parse_bands(bad)
    b = EnergyBand(0.2, 2.0)
    assert list(b.contains([0.1, 0.2, 1.9, 2.0])) == [False, True, True, False]
    grid = b.energy_grid(5)
    assert np.all((grid > 0.2) & (grid < 2.0)) and np.all(np.diff(grid) > 0)


def test_grid_of_an_unrotated_teldef_is_the_raw_grid():
    y, z = detector_grid(FlatTeldef())
    assert np.allclose(y, np.arange(257) - 128.0) and np.allclose(z, y)


def test_coverage_without_rotation_and_bad_pixels():
    tel = FlatTeldef()
    y, z = detector_grid(tel)
    bad = np.zeros((256, 256), bool)
    bad[10, 20] = True
    bad[:, 100] = True  # a dead column... of RAWZ = 100
    cov = chip_coverage(y, z, tel, bad, subsample=2)
    assert cov.shape == (256, 256)
    assert cov[10, 20] == 0.0 and np.all(cov[:, 100] == 0.0)
    assert cov.sum() == 256 * 256 - 256 - 1


@settings(max_examples=15, deadline=None)
@given(angle=st.floats(-45, 45))
def test_coverage_of_a_rotated_chip_preserves_its_area(angle):
    tel = FlatTeldef(rotation_deg=angle)
    y, z = detector_grid(tel)
    cov = chip_coverage(y, z, tel, subsample=4)
    assert np.all((cov >= 0) & (cov <= 1))
    # Area of the chip, up to the sub-sampling of the edge pixels.
    perimeter = 4 * 256
    assert abs(cov.sum() - 256**2) < 0.25 * perimeter


def test_select_events_applies_status_pattern_gti_and_band():
    tel = FlatTeldef()
    n = 8
    status = np.zeros(n, int)
    status[1] = STATUS_BITS["HOTPIX"]
    status[2] = STATUS_BITS["BORDER"]  # kept: BORDER is not a rejection bit
    pattern = np.zeros(n, int)
    pattern[3] = 13
    time = np.arange(n, dtype=float)
    energy = np.full(n, 1.0)
    energy[4] = 5.0
    gti = GTI([-0.5, 6.5], [5.5, 10.0])  # excludes t = 6
    ev = make_events(np.zeros(n), np.zeros(n), energy, time, tel, status=status, pattern=pattern, gti=gti)
    keep = select_events(ev, EnergyBand(0.2, 2.0))
    assert list(keep) == [True, False, True, False, False, True, False, True]
    assert REJECT_STATUS & STATUS_BITS["BORDER"] == 0


def test_bin_events_matches_histogram2d():
    rng = np.random.default_rng(1)
    y = rng.uniform(-130, 130, 5000)
    z = rng.uniform(-130, 130, 5000)
    edges = np.arange(257) - 128.0
    ref, _, _ = np.histogram2d(y, z, bins=[edges, edges])
    # histogram2d closes the last bin on the right; the grid is half-open.
    inside = (y < 128) & (z < 128)
    ref2, _, _ = np.histogram2d(y[inside], z[inside], bins=[edges, edges])
    assert np.array_equal(bin_events(y, z, edges, edges), ref2.astype(int))
    assert ref.sum() >= ref2.sum()


def test_build_images_without_attitude():
    tel = FlatTeldef()
    rng = np.random.default_rng(2)
    n = 3000
    y = rng.normal(10.3, 3.0, n)
    z = rng.normal(-20.7, 3.0, n)
    energy = rng.uniform(0.3, 9.0, n)
    status = np.where(rng.uniform(size=n) < 0.1, STATUS_BITS["PILEUP"], 0)
    ev = make_events(y, z, energy, np.linspace(0, 100, n), tel, status=status)
    bad = np.zeros((256, 256), bool)
    bad[50, 50] = True
    img = build_images(ev, DEFAULT_BANDS, tel, bad_mask=bad)
    ok = status == 0
    for band, counts in zip(DEFAULT_BANDS, img.counts):
        sel = ok & band.contains(energy)
        assert counts.sum() == sel.sum()
        assert np.array_equal(counts, bin_events(y[sel], z[sel], img.y_edges, img.z_edges))
    assert img.exposure[50, 50] == 0.0 and img.exposure.sum() == 256**2 - 1
    assert img.livetime == pytest.approx(ev.gti.exposure)
    assert img.t_ref is None


def test_hot_pixels_found_in_the_data_are_masked():
    tel = FlatTeldef()
    ev = make_events([5.2, 5.3], [7.1, 7.2], [1.0, 1.0], [0.0, 1.0], tel, status=np.array([STATUS_BITS["HOTPIX"], 0]))
    img = build_images(ev, DEFAULT_BANDS, tel)
    ry, rz = (int(v) for v in coords.raw_pixel(np.array(tel.det_to_raw(5.2, 7.1))))
    assert img.exposure[ry, rz] == 0.0


def test_attitude_motion_is_undone_and_averaged_in_the_exposure():
    # The pointing drifts by 6 pixels along DETY over the observation: events of one
    # sky position land on different detector pixels, but re-projected to the
    # reference attitude they fall in one pixel; the chip edge is smeared in the
    # exposure map (the fraction of the time each reference pixel was on the chip).
    tel = FlatTeldef()
    drift_deg = 6 * 13.57 / 3600.0
    times = np.linspace(0.0, 1000.0, 101)
    att = Attitude.from_pointing(times, np.linspace(0.0, drift_deg, 101), np.zeros(101), np.zeros(101))
    gti = GTI([0.0], [1000.0])
    t_ev = np.linspace(1.0, 999.0, 400)
    # A fixed sky position: where the reference (mid-time) pointing sees DET (20.2, -30.6).
    ref = att.rotation(np.array([500.0]))
    ra0, dec0 = coords.det_to_radec(20.2, -30.6, 500.0, ref, tel)
    dety, detz = coords.radec_to_det(np.full(400, ra0[0]), np.full(400, dec0[0]), t_ev, att, tel)
    assert np.ptp(dety) > 5.0  # the drift is real on the detector
    ev = make_events(dety, detz, np.full(400, 1.0), t_ev, tel, attitude=att, gti=gti)
    img = build_images(ev, [EnergyBand(0.2, 2.0)], tel, attitude=att, subsample=2, attitude_step=0.5)
    iy, iz = np.nonzero(img.counts[0])
    assert len(iy) == 1  # all events in one pixel
    assert img.y_edges[iy[0]] <= 20.2 < img.y_edges[iy[0] + 1]
    assert img.t_ref == pytest.approx(500.0, abs=10.0)
    # Interior pixels are always on the chip; the edge rows along the drift are partial.
    assert np.all(img.exposure[10:-10, 10:-10] == 1.0)
    edge = img.exposure[:8, 128]
    assert np.all(np.diff(edge) >= -1e-12) and 0.0 < edge[0] < 1.0 and edge[-1] == 1.0
    _, cl_times, cl_w = attitude_clusters(att, gti, tel, 0.5)
    assert cl_w.sum() == pytest.approx(1000.0)
    assert len(cl_times) >= 10


def test_no_good_time_is_an_error():
    tel = FlatTeldef()
    ev = make_events([0.0], [0.0], [1.0], [0.0], tel, gti=GTI.empty())
    with pytest.raises(MXTInputError):
        build_images(ev, DEFAULT_BANDS, tel)
