"""The field image preview: WCS axes that agree with the L2 sky pixels, a colour bar,
a scale bar and north/east arrows, drawn without switching the global backend."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxt_pipeline import constants as C
from mxt_pipeline.detect.field_preview import (
    FieldSource,
    field_image_figure,
    field_image_png,
    image_wcs,
)
from mxt_pipeline.geometry import sky_to_radec


@settings(max_examples=40, deadline=None)
@given(ra0=st.floats(0, 359.9), dec0=st.floats(-85, 85), x=st.floats(100, 400), y=st.floats(100, 400),
       bin_pixels=st.sampled_from([1.0, 2.0, 4.0]))  # fmt: skip
def test_image_wcs_matches_the_sky_pixels(ra0, dec0, x, y, bin_pixels):
    """Array index of sky (X, Y) in the binned image -> the RA/Dec of sky_to_radec, to 0.01"."""
    x0 = y0 = 256.5 - 160.0
    w = image_wcs(ra0, dec0, x0, y0, bin_pixels)
    px, py = (x - x0) / bin_pixels - 0.5, (y - y0) / bin_pixels - 0.5
    c = w.pixel_to_world(px, py)
    ra, dec = sky_to_radec(np.array([x]), np.array([y]), ra0, dec0)
    from astropy.coordinates import SkyCoord

    assert c.separation(SkyCoord(ra[0], dec[0], unit="deg")).arcsec < 0.01


def _figure(dec0=30.0):
    rng = np.random.default_rng(3)
    img = rng.poisson(2.0, (80, 80)).astype(float)
    return field_image_figure(img, 96.5, 96.5, 4.0, 150.0, dec0, sources=[FieldSource(256.5, 256.5, 20.0, "1")],
                              trigger=(260.0, 250.0), title="t")  # fmt: skip


@pytest.mark.parametrize("dec0", [-60.0, 0.0, 30.0, 80.0])
def test_north_up_east_left(dec0):
    fig = _figure(dec0)
    nx, ny = fig.mxt_arrows["N"]
    ex, ey = fig.mxt_arrows["E"]
    assert ny > 0 and abs(nx) < 0.05 * ny  # north up
    assert ex < 0 and abs(ey) < 0.05 * abs(ex)  # east to the left
    assert nx ** 2 + ny ** 2 == pytest.approx(ex ** 2 + ey ** 2, rel=0.02)  # same length on the sky


def test_axes_colour_bar_scale_bar_and_labels():
    fig = _figure()
    image_ax, cbar_ax = fig.axes[:2]
    assert "RA" in image_ax.coords[0].get_axislabel() and "Dec" in image_ax.coords[1].get_axislabel()
    assert "counts" in cbar_ax.get_ylabel()
    texts = {t.get_text() for t in image_ax.texts}
    assert {"N", "E", "1"} <= texts
    # The scale bar: a round length in arcmin, drawn with the right length in bins.
    bar = [t for t in texts if t.endswith("'")]
    assert len(bar) == 1
    length = float(bar[0][:-1])
    lines = [ln for ln in image_ax.get_lines() if ln.get_color() == "white"]
    xs = lines[0].get_xdata()
    assert (xs[1] - xs[0]) * 4.0 * C.PIXEL_SCALE_ARCSEC / 60.0 == pytest.approx(length)


def test_drawn_without_switching_the_backend(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("matplotlib.use called")

    monkeypatch.setattr(matplotlib, "use", refuse)
    png = field_image_png(np.ones((10, 10)), 236.5, 236.5, 4.0, 10.0, -20.0)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
