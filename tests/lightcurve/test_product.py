"""The MXT_LC product (fitsverify, round trip), PNG previews, the file task and ``mxt lightcurve``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxt_pipeline.caldb.products import CalibrationSet
from mxt_pipeline.cli.main import main
from mxt_pipeline.datamodel import GTI, GapList
from mxt_pipeline.errors import MXTFormatError
from mxt_pipeline.io import read_product
from mxt_pipeline.io.lightcurve_product import (
    light_curve_filename,
    read_light_curve,
    write_light_curve,
)
from mxt_pipeline.io.products import write_events
from mxt_pipeline.lightcurve import (
    extract_light_curves,
    plot_light_curve,
)
from mxt_pipeline.lightcurve.extract import fraction_vs_energy, source_region
from mxt_pipeline.lightcurve.preview import GAP_COLOURS, figure_png, upper_limits
from mxt_pipeline.lightcurve.rates import light_curve

from .simulated import write_source_list

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def curves(observation):
    events, srclist = observation
    return extract_light_curves(events, srclist, binning_method="snr", target_snr=4.0)


def test_product_passes_fitsverify_and_round_trips(curves, tmp_path, fitsverify):
    lc = curves[0]
    lc.meta["TRIGTIME"] = -100.0
    path = write_light_curve(tmp_path / light_curve_filename(lc), lc)
    assert path.name == "mxt_lc_LCTEST01_src1.fits"
    result = fitsverify(path)
    assert result.ok, result
    prod = read_product(path, "MXT_LC")
    hdr = prod.header("RATE")
    assert (hdr["HDUCLAS1"], hdr["TIMEPIXR"], hdr["BINNING"]) == ("LIGHTCURVE", 0.5, "SNR")
    assert {"TIME", "TIMEDEL", "RATE", "ERROR", "FRACEXP", "ERR_LO", "ERR_HI"} <= set(prod.table("RATE").colnames)
    back = read_light_curve(path)
    for name in ("lo", "hi"):
        np.testing.assert_allclose(getattr(back, name), getattr(lc, name), rtol=1e-12)
    np.testing.assert_allclose(back.exposure, lc.exposure, rtol=1.2e-7)  # FRACEXP is float32
    for name in ("rate", "err_lo", "err_hi", "bkg_rate", "bkg_error"):  # float32 columns
        np.testing.assert_allclose(getattr(back, name), getattr(lc, name), rtol=2e-7, atol=1e-30)
    np.testing.assert_array_equal(back.counts, lc.counts)
    np.testing.assert_array_equal(back.bkg_counts, lc.bkg_counts)
    np.testing.assert_array_equal(back.gti.start, lc.gti.start)
    np.testing.assert_array_equal(back.gaps.origin, lc.gaps.origin)
    assert set(back.gaps.origin) == {"EARTH", "SAA", "TELEMETRY"}
    for key in ("SRC_ID", "BINNING", "PSFFRAC", "AREARAT", "ERRMETH", "TRIGTIME", "OBS_ID"):
        assert back.meta[key] == pytest.approx(lc.meta[key]) if isinstance(lc.meta[key], float) else back.meta[key] == lc.meta[key]


def test_product_needs_its_keywords(curves, tmp_path):
    lc = curves[1]
    meta = dict(lc.meta)
    del meta["BINNING"]
    bad = type(lc)(**{**lc.__dict__, "meta": meta})
    with pytest.raises(MXTFormatError, match="BINNING"):
        write_light_curve(tmp_path / "x.fits", bad)


@settings(max_examples=15, deadline=None)
@given(
    counts=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    width=st.floats(0.5, 500.0),
    gap_at=st.integers(0, 11),
)
def test_round_trip_of_arbitrary_curves(tmp_path_factory, counts, width, gap_at):
    """Any binned curve (empty bins, a gap, any width) survives write and read."""
    n = len(counts)
    edges = np.arange(n + 1) * width
    g = min(gap_at, n - 1)
    starts = [0.0] if g == 0 else [0.0, edges[g] + 0.25 * width]
    stops = [edges[n]] if g == 0 else [edges[g], edges[n]]
    gti = GTI(starts, stops)
    times = np.concatenate([np.full(c, 0.5 * (a + b)) for c, a, b in zip(counts, edges[:-1], edges[1:])])
    times = times[gti.contains(times)]
    gaps = GapList([edges[g]], [edges[g] + 0.25 * width], ["SAA"]) if g else GapList.empty()
    lc = light_curve(times, edges[:-1], edges[1:], gti, gaps=gaps,
                     meta={"OBS_ID": "HYP", "SRC_ID": 3, "RA_OBJ": 1.0, "DEC_OBJ": -2.0, "E_MIN": 0.2,
                           "E_MAX": 10.0, "BINNING": "FIXED"})  # fmt: skip
    path = write_light_curve(tmp_path_factory.mktemp("rt") / "lc.fits", lc)
    back = read_light_curve(path)
    np.testing.assert_allclose(back.time, lc.time, rtol=1e-12)
    np.testing.assert_allclose(back.fracexp, lc.fracexp, rtol=1e-6)
    np.testing.assert_array_equal(back.counts, lc.counts)
    np.testing.assert_allclose(back.rate, lc.rate, rtol=2e-7)
    assert len(back.gaps) == len(gaps)


def _artists(fig):
    ax = fig.axes[0]
    spans = [p for p in ax.patches if p.get_zorder() == 0]
    texts = [t.get_text() for t in ax.texts]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    return ax, spans, texts, legend


def test_preview_shows_gaps_with_their_origin(curves, observation, tmp_path):
    events, _ = observation
    lc = curves[1]
    png = tmp_path / "lc.png"
    fig = plot_light_curve(lc)
    png.write_bytes(figure_png(fig))
    assert png.read_bytes()[:8] == PNG_MAGIC
    ax, spans, texts, legend = _artists(fig)
    assert ax.get_xscale() == "linear"
    # One shaded span and one label per gap, in the colour of its origin.
    assert len(spans) == len(events.gaps)
    assert sorted(texts) == sorted(events.gaps.origin.tolist())
    assert {f"gap: {o}" for o in events.gaps.origin} <= set(legend)
    for span, origin in zip(spans, events.gaps.origin):
        assert np.allclose(span.get_facecolor()[:3], _rgb(GAP_COLOURS[origin]))
    # Error bars: the detected points carry the asymmetric errors.
    assert "net rate" in legend


def _rgb(hex_colour):
    from matplotlib.colors import to_rgb

    return to_rgb(hex_colour)


def test_grb_preview_is_log_log_with_upper_limits(curves, tmp_path):
    lc = curves[0]
    lc.meta["TRIGTIME"] = -100.0
    fig = plot_light_curve(lc)
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert ax.get_xlabel() == "time since trigger (s)"
    # Upper limits: KBN at 3 sigma, above the rate of every bin.
    ul = upper_limits(lc)
    assert np.all(ul >= lc.rate) and np.all(np.isfinite(ul))


def test_cli_lightcurve_writes_products_and_previews(observation, tmp_path, fitsverify, monkeypatch):
    from mxt_pipeline.pipelines import standalone

    # The test events are dated before the bundled CALDB's first epoch: its PSF as of now.
    monkeypatch.setattr(standalone, "date_of_inputs", lambda inputs: None)
    events, _ = observation
    l2 = write_events(tmp_path / "l2.fits", events)
    srclist = write_source_list(tmp_path / "srclist.fits", [(128.0, 128.0), (60.0, 200.0)])
    out = tmp_path / "lc"
    rc = main(["lightcurve", str(l2), "--srclist", str(srclist), "--binning", "fixed", "--out", str(out / "fixed"),
               "--bin-width-s", "500", "--trigger", "-100"])  # fmt: skip
    assert rc == 0
    products = sorted((out / "fixed").glob("*.fits"))
    assert [p.name for p in products] == ["mxt_lc_LCTEST01_src1.fits", "mxt_lc_LCTEST01_src2.fits"]
    for p in products:
        assert fitsverify(p).ok
        assert p.with_suffix(".png").read_bytes()[:8] == PNG_MAGIC
        assert read_light_curve(p).meta["BINNING"] == "FIXED"
        assert read_light_curve(p).meta["TRIGTIME"] == -100.0
    # The other binnings, one source, no preview.
    for binning in ("snr", "blocks"):
        rc = main(["lightcurve", str(l2), "--srclist", str(srclist), "--binning", binning, "--out", str(out / binning),
                   "--src-ids", "2", "--no-previews", "--target-snr", "4"])  # fmt: skip
        assert rc == 0
        (only,) = (out / binning).iterdir()
        assert only.name == "mxt_lc_LCTEST01_src2.fits"
        assert read_light_curve(only).meta["BINNING"] == binning.upper()
    # Same numbers as the library call with the brick's region: the circle of the
    # CALDB PSF at 1.5 keV, the PSF correction for each source's spectrum.
    psf = CalibrationSet.from_caldb(None, codes=("PSF",)).psf
    region = source_region(psf)
    region = replace(region, fraction_of_energy=fraction_vs_energy(psf, region.radius))
    direct = extract_light_curves(events, _srclist_table(srclist), binning_method="fixed", bin_width=500.0,
                                  region=region)  # fmt: skip
    back = read_light_curve(out / "fixed" / "mxt_lc_LCTEST01_src2.fits")
    np.testing.assert_allclose(back.rate, direct[1].rate, rtol=2e-7)
    # Errors: a bad band is a usage error, a missing file an MXT error (status 2).
    assert main(["lightcurve", str(l2), "--srclist", str(srclist), "--out", str(out), "--e-min", "5", "--e-max", "1"]) != 0
    assert main(["lightcurve", str(tmp_path / "none.fits"), "--srclist", str(srclist), "--out", str(out)]) == 2


def _srclist_table(path):
    return read_product(path, "MXT_SOP_SKY").table("SRCLIST")


@given(ids=st.lists(st.integers(-5, 10**6), min_size=1, max_size=12), spaces=st.booleans())
def test_src_ids_parser(ids, spaces):
    """``--src-ids 3,1,3``: the SRC_IDs in the order given, each once; junk is refused."""
    from mxt_pipeline.errors import MXTInputError
    from mxt_pipeline.pipelines.bricks.lightcurves import parse_src_ids

    text = (", " if spaces else ",").join(str(i) for i in ids)
    assert parse_src_ids(text) == list(dict.fromkeys(ids))
    with pytest.raises(MXTInputError, match="not an integer"):
        parse_src_ids(text + ",x")
    with pytest.raises(MXTInputError, match="no SRC_ID"):
        parse_src_ids(" , ")


def test_grb_preview_keeps_an_early_gap_in_view(tmp_path):
    """The final slew before the first bin of a GRB observation stays on the plot."""
    gti = GTI([100.0, 700.0], [500.0, 2000.0])
    gaps = GapList([50.0, 500.0], [100.0, 700.0], ["SLEW", "EARTH"])
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(100.0, 2000.0, 400))
    t = t[gti.contains(t)]
    lo, hi = np.array([100.0, 300.0, 700.0, 1200.0]), np.array([300.0, 500.0, 1200.0, 2000.0])
    lc = light_curve(t, lo, hi, gti, gaps=gaps, meta={"TRIGTIME": 0.0})
    fig = plot_light_curve(lc)
    ax, spans, texts, _ = _artists(fig)
    assert ax.get_xlim()[0] <= 50.0
    assert sorted(texts) == ["EARTH", "SLEW"] and len(spans) == 2


def test_preview_labels_are_readable(curves, tmp_path):
    """The x label of a curve without trigger gives a date, not a mission-time float;
    log axes read as plain numbers."""
    from mxt_pipeline.io.fits import met_to_isot

    lc = curves[1]
    fig = plot_light_curve(lc)
    label = fig.axes[0].get_xlabel()
    assert met_to_isot(lc.gti.tstart)[:19] + " TT" in label and "MET" not in label
    assert "e+" not in label and "00000000.0" not in label
    grb = curves[0]
    grb.meta["TRIGTIME"] = -100.0
    fig = plot_light_curve(grb)
    fig.canvas.draw()
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels() + fig.axes[0].get_xticklabels() if t.get_text()]
    assert ticks and not any("times" in t or "^" in t for t in ticks), ticks
