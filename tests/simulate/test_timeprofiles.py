"""Time profiles (bounds, shapes, templates) and arrival times by thinning."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

from mxt_pipeline.datapaths import swift_xrt_dir
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.simulate.photons import arrival_times, expected_counts
from mxt_pipeline.simulate.timeprofiles import (
    CanonicalGRB,
    Constant,
    Flare,
    Periodic,
    SwiftTemplate,
    list_swift_templates,
    profile_from_dict,
    read_swift_lightcurve,
    template_file_name,
)

T0 = 3.0e8
needs_data = pytest.mark.skipif(swift_xrt_dir() is None, reason="Swift-XRT light curves not available")


def _grb():
    return CanonicalGRB(trigger_time=T0, alpha1=4.0, t_break1=350.0, alpha2=0.4, t_break2=4000.0, alpha3=1.3,
                        t_jet=3e4, alpha4=2.2, flares=(Flare(600.0, 4.0, 20.0, 60.0), Flare(2500.0, 2.0, 100.0, 300.0)))


def _template():
    t = np.geomspace(60.0, 1e5, 40)
    rng = np.random.default_rng(3)
    r = 100 * (t / 60) ** -1.2 * np.exp(rng.normal(0, 0.3, t.size))
    return SwiftTemplate(name="SYNTH", trigger_time=T0, times=t, rates=r)


def _binned_template():
    t = np.geomspace(60.0, 1e5, 40)
    rng = np.random.default_rng(4)
    r = 100 * (t / 60) ** -1.2 * np.exp(rng.normal(0, 0.3, t.size))
    half = 0.08 * t * rng.uniform(0.3, 1.0, t.size)
    lo, hi = t - half, t + half
    hi[:-1] = np.minimum(hi[:-1], lo[1:])  # no overlaps
    return SwiftTemplate(name="SYNTHB", trigger_time=T0, times=t, rates=r, t_lo=lo, t_hi=hi)


PROFILES = {
    "constant": Constant(),
    "binned": _binned_template(),
    "periodic": Periodic(period=137.0, amplitude=0.7, t0=T0, phase=0.3),
    "grb": _grb(),
    "template": _template(),
}


@pytest.mark.parametrize("name", sorted(PROFILES))
@given(a=st.floats(0.0, 2e5), w=st.floats(1e-3, 5e4))
def test_bound_holds_on_any_interval(name, a, w):
    prof = PROFILES[name]
    lo, hi = T0 + a, T0 + a + w
    b = prof.bound(np.array([lo]), np.array([hi]))[0]
    t = np.linspace(lo, hi, 257)
    assert np.all(prof.value(t) <= b * (1 + 1e-9) + 1e-300)


def test_grb_continuity_slopes_and_normalisation():
    g = CanonicalGRB(trigger_time=T0, alpha1=3.5, t_break1=400, alpha2=0.5, t_break2=5000, alpha3=1.2)
    assert g.value(T0 + 1000.0) == pytest.approx(1.0)
    assert g.value(T0 - 1.0) == 0.0
    for tb in (400.0, 5000.0):
        lo, hi = g.value(T0 + tb * (1 - 1e-9)), g.value(T0 + tb * (1 + 1e-9))
        assert lo == pytest.approx(hi, rel=1e-6)
    for (a, b), alpha in (((50, 300), 3.5), ((500, 4000), 0.5), ((6000, 1e5), 1.2)):
        slope = np.log(g.value(T0 + b) / g.value(T0 + a)) / np.log(b / a)
        assert slope == pytest.approx(-alpha, rel=1e-9)
    # Held constant below tau_min.
    assert g.value(T0 + 1.0) == pytest.approx(g.value(T0 + g.tau_min))


def test_flare_peak():
    f = Flare(t_peak=800.0, amplitude=5.0, tau1=30.0, tau2=90.0)
    tau = np.linspace(f.t_start, 3000, 200001)
    s = f.shape(tau)
    assert tau[np.argmax(s)] == pytest.approx(800.0, abs=0.02)
    assert s.max() == pytest.approx(1.0, rel=1e-6)
    g = CanonicalGRB(trigger_time=T0, flares=(f,))
    assert g.value(T0 + 800.0) == pytest.approx(6.0 * g.continuum(T0 + 800.0), rel=1e-6)
    with pytest.raises(MXTInputError):
        Flare(t_peak=10.0, amplitude=1.0, tau1=100.0, tau2=100.0)


def test_template_interpolation():
    p = _template()
    # (times of 3e8 s carry 6e-8 s of rounding: relative precision 1e-9 on the rates)
    np.testing.assert_allclose(p.value(T0 + p.times), p.rates, rtol=1e-8)
    # Power law between two nodes: the geometric mean time gives the geometric mean rate.
    tm = np.sqrt(p.times[3] * p.times[4])
    assert p.value(T0 + tm) == pytest.approx(np.sqrt(p.rates[3] * p.rates[4]), rel=1e-8)
    assert p.value(T0 + 1.0) == pytest.approx(p.rates[0])
    assert p.value(T0 - 5.0) == 0.0
    assert p.value(T0 + 2e5) <= p.rates[-1]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_integral_against_quad(name):
    prof = PROFILES[name]
    a, b = T0 + 100.0, T0 + 20000.0
    edges = prof.grid(a, b)
    ref = sum(integrate.quad(lambda t: float(prof.value(t)), lo, hi, limit=200)[0] for lo, hi in zip(edges[:-1], edges[1:]))
    assert prof.integral(a, b) == pytest.approx(ref, rel=1e-6)


def test_binned_template_reproduces_bin_averages():
    p = _binned_template()
    for k in (0, 7, 20, 39):
        a, b = T0 + p.t_lo[k], T0 + p.t_hi[k]
        assert p.integral(a, b) == pytest.approx(p.rates[k] * (b - a), rel=1e-9)
    # Across a gap: a power law from the end of one bin's rate to the next one's.
    k = int(np.argmax(p.t_lo[1:] - p.t_hi[:-1]))
    g0, g1 = p.t_hi[k], p.t_lo[k + 1]
    assert g1 > g0
    tm = np.sqrt(g0 * g1)
    assert p.value(T0 + tm) == pytest.approx(np.sqrt(p.rates[k] * p.rates[k + 1]), rel=1e-6)
    with pytest.raises(MXTInputError):
        SwiftTemplate(name="X", trigger_time=T0, times=p.times, rates=p.rates, t_lo=p.t_lo)
    with pytest.raises(MXTInputError):
        SwiftTemplate(name="X", trigger_time=T0, times=p.times, rates=p.rates, t_lo=p.t_hi, t_hi=p.t_lo)


@pytest.mark.parametrize("name", ["periodic", "grb", "template", "binned"])
def test_arrival_times_follow_the_profile(name):
    """Counts in 40 bins against rate x integral: chi-square, false-failure rate 1e-3."""
    prof = PROFILES[name]
    rng = np.random.default_rng(sorted(PROFILES).index(name))
    a, b = T0 + 200.0, T0 + 12000.0
    rate0 = 40000.0 / (prof.integral(a, b) / (b - a)) / (b - a)
    t = arrival_times(prof, rate0, a, b, rng)
    assert np.all(np.diff(t) >= 0) and t.min() >= a and t.max() < b
    edges = np.geomspace(200.0, 12000.0, 41) + T0
    obs, _ = np.histogram(t, edges)
    exp = np.array([rate0 * prof.integral(lo, hi) for lo, hi in zip(edges[:-1], edges[1:])])
    chi2 = np.sum((obs - exp) ** 2 / exp)
    assert stats.chi2.sf(chi2, len(obs)) > 1e-3, chi2
    # The total is Poisson around rate0 x integral: 4.5 sigma (false failure < 1e-5).
    mu = expected_counts(prof, rate0, a, b)
    assert abs(t.size - mu) < 4.5 * np.sqrt(mu)


def test_arrival_times_errors():
    rng = np.random.default_rng(1)
    assert arrival_times(Constant(), 0.0, 0.0, 10.0, rng).size == 0
    with pytest.raises(MXTInputError):
        arrival_times(Constant(), -1.0, 0.0, 10.0, rng)
    with pytest.raises(MXTInputError):
        arrival_times(Constant(), 1.0, 10.0, 10.0, rng)
    with pytest.raises(MXTInputError, match="candidate photons"):
        arrival_times(Constant(), 1e9, 0.0, 1e6, rng)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_dict_round_trip(name):
    prof = PROFILES[name]
    back = profile_from_dict(prof.to_dict())
    t = T0 + np.geomspace(1.0, 1e5, 50)
    np.testing.assert_allclose(back.value(t), prof.value(t), rtol=1e-10)


def test_profile_dict_errors():
    assert isinstance(profile_from_dict(None), Constant)
    with pytest.raises(MXTInputError, match="unknown time profile"):
        profile_from_dict({"model": "sawtooth"})
    with pytest.raises(MXTInputError) as exc:
        profile_from_dict({"model": "periodic", "periode": 3})
    assert exc.value.keyword == "periode"
    with pytest.raises(MXTInputError):
        profile_from_dict({"model": "swift_xrt", "name": "X"})
    with pytest.raises(MXTInputError):
        Periodic(amplitude=1.5)
    with pytest.raises(MXTInputError):
        CanonicalGRB(t_break1=5000.0, t_break2=400.0)


def test_template_file_name():
    assert template_file_name("GRB 061121") == "GRB_061121"
    assert template_file_name("Swift J164449.3+573451") == "Swift_J164449.3+573451"


def test_missing_data_is_an_input_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MXT_SWIFT_XRT_DATA", str(tmp_path / "none"))
    (tmp_path / "PC").mkdir()
    with pytest.raises(MXTInputError, match="no Swift-XRT light curve"):
        read_swift_lightcurve("GRB_000000", tmp_path)


def test_bad_template_file(tmp_path):
    (tmp_path / "PC").mkdir()
    (tmp_path / "PC" / "GRB_1.json").write_text('{"Time": [1, 2]}')
    from mxt_pipeline.errors import MXTFormatError

    with pytest.raises(MXTFormatError) as exc:
        read_swift_lightcurve("GRB_1", tmp_path)
    assert exc.value.column == "TimePos"


@needs_data
def test_real_template_grb061121():
    lc = read_swift_lightcurve("GRB 061121")
    assert lc.event == "GRB 061121"
    assert set(lc.mode) == {"WT", "PC"}
    assert np.all(np.diff(lc.time) > 0)
    # WT bins only before the first PC bin.
    assert lc.time[lc.mode == "WT"].max() < lc.time_lo[lc.mode == "PC"].min()
    assert lc.nh_gal == pytest.approx(0.0463)
    prof = SwiftTemplate.from_name("GRB_061121", T0)
    assert prof.value(T0 + lc.time[10]) == pytest.approx(lc.rate[10], rel=1e-8)
    hi = min(lc.time_hi[50], lc.time_lo[51])  # repository bins overlap by 1 ms of rounding
    assert prof.integral(T0 + lc.time_lo[50], T0 + hi) == pytest.approx(lc.rate[50] * (hi - lc.time_lo[50]), rel=1e-6)
    assert "GRB_061121" in list_swift_templates()
