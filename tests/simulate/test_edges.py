"""Edges of the simulator: refused inputs (named by keyword), empty and degenerate cases.

Each refusal is checked for its exception class and the keyword it names, so that a
check that tests the wrong field or lets a bad value through fails here.  The
degenerate cases (no calibration line, no MIP, a mono-energetic line outside the band,
a profile asked before its trigger, a Swift-XRT folder with one mode missing) are
checked against what the physics says they must give, not only run.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from mxt_pipeline.datamodel import GTI
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.simulate.background import (
    CalibrationSettings,
    CXBSettings,
    ParticleSettings,
    calibration_events,
    particle_events,
)
from mxt_pipeline.simulate.bench import component_seed
from mxt_pipeline.simulate.cases import case_rng, make_case
from mxt_pipeline.simulate.detector import (
    DetectorModel,
    DetectorSettings,
    HotPixel,
    WarmColumn,
    accumulate,
    noise_hits,
)
from mxt_pipeline.simulate.ephemeris import Orbit, bad_time_from_samples
from mxt_pipeline.simulate.operations import PassPlan, Pointing, Slew
from mxt_pipeline.simulate.photons import EnergyTable, PhotonBatch, arrival_times
from mxt_pipeline.simulate.scenario import Scenario, scenario_from_dict
from mxt_pipeline.simulate.sources import Source
from mxt_pipeline.simulate.spectra import (
    Blackbody,
    GaussianLine,
    PowerLaw,
    energy_flux,
    normalisation_for_flux,
    photon_flux,
    spectrum_from_dict,
    transmission,
)
from mxt_pipeline.simulate.timeprofiles import (
    CanonicalGRB,
    Constant,
    Flare,
    Periodic,
    SwiftTemplate,
    choose_swift_template,
    list_swift_templates,
    profile_from_dict,
    read_swift_lightcurve,
)

from .simkit import T0, quiet_context
from .swift_format import write_swift_folder

KEV_TO_ERG = 1.602176634e-9

# --------------------------------------------------------------------------------------
# Refused inputs: each names the offending field
# --------------------------------------------------------------------------------------

REFUSED = [
    (lambda: CXBSettings(intensity_2_10=-1.0), "intensity_2_10"),
    (lambda: CXBSettings(nh=-0.1), "intensity_2_10"),
    (lambda: CXBSettings(half_width_arcmin=0.0), "half_width_arcmin"),
    (lambda: CXBSettings(half_width_arcmin=601.0), "half_width_arcmin"),
    (lambda: ParticleSettings(e_min=5.0, e_max=1.0), "rate_cm2_s_kev"),
    (lambda: CalibrationSettings(lines=({"energy": 1.5},)), "lines"),
    (lambda: CalibrationSettings(lines=({"energy": "x", "rate": 1.0},)), "lines"),
    (lambda: CalibrationSettings(lines=({"energy": 0.0, "rate": 1.0},)), "lines"),
    (lambda: CalibrationSettings(lines=({"energy": 1.5, "rate": -1.0},)), "lines"),
    (lambda: Slew(ra=0.0, dec=0.0, rate_deg_s=0.0), "rate_deg_s"),
    (lambda: Slew(ra=0.0, dec=91.0), "dec"),
    (lambda: Pointing(ra=10.0, dec=95.0), "dec"),
    (lambda: Pointing(ra=math.nan, dec=0.0), "dec"),
    (lambda: Pointing(ra=10.0, dec=0.0, jitter_arcsec=-1.0), "jitter_arcsec"),
    (lambda: Pointing(ra=10.0, dec=0.0, jitter_tau_s=0.0), "jitter_arcsec"),
    (lambda: PassPlan(mode="sometimes"), "mode"),
    (lambda: PassPlan(interval_s=0.0), "interval_s"),
    (lambda: PassPlan(overlap_s=-1.0), "interval_s"),
    (lambda: PassPlan(loss_probability=1.5), "loss_probability"),
    (lambda: PassPlan(mode="explicit"), "passes"),
    (lambda: Orbit(altitude_km=100.0), "altitude_km"),
    (lambda: Orbit(inclination_deg=181.0), "inclination_deg"),
    (lambda: Source("s", 10.0, 91.0, 1e-11, PowerLaw()), "dec"),
    (lambda: Source("s", math.inf, 0.0, 1e-11, PowerLaw()), "dec"),
    (lambda: Source("s", 10.0, 0.0, -1e-11, PowerLaw()), "flux"),
    (lambda: Source("s", 10.0, 0.0, math.nan, PowerLaw()), "flux"),
    (lambda: PowerLaw(nh=-0.1), "nh"),
    (lambda: PowerLaw(index=math.inf), "index"),
    (lambda: Blackbody(kt=0.0), "kt"),
    (lambda: Blackbody(nh=-1.0), "nh"),
    (lambda: GaussianLine(energy=-1.0), "energy"),
    (lambda: GaussianLine(sigma=-0.1), "energy"),
    (lambda: spectrum_from_dict({"index": 2.0}), "model"),
    (lambda: spectrum_from_dict({"model": "bremsstrahlung"}), "model"),
    (lambda: spectrum_from_dict({"model": "powerlaw", "gamma": 2.0}), "gamma"),
    (lambda: spectrum_from_dict({"model": "powerlaw", "index": "steep"}), "model"),
    (lambda: normalisation_for_flux(PowerLaw(), -1e-12), "flux"),
    (lambda: normalisation_for_flux(PowerLaw(), math.inf), "flux"),
    # A mono-energetic line outside the flux band carries no flux there.
    (lambda: normalisation_for_flux(GaussianLine(energy=20.0), 1e-12, (0.2, 10.0)), "spectrum"),
    (lambda: Periodic(period=0.0), "period"),
    (lambda: Periodic(period=math.inf), "period"),
    (lambda: Periodic(amplitude=1.5), "amplitude"),
    (lambda: Flare(t_peak=100.0, amplitude=-2.0, tau1=5.0, tau2=10.0), "amplitude"),
    (lambda: Flare(t_peak=5.0, amplitude=2.0, tau1=5.0, tau2=10.0), "t_peak"),
    (lambda: CanonicalGRB(alpha2=9.0), "alpha2"),
    (lambda: CanonicalGRB(t_ref=0.0), "t_ref"),
    (lambda: CanonicalGRB(t_break1=6000.0), "t_break1"),
    (lambda: profile_from_dict({"period": 10.0}), "model"),
    (lambda: profile_from_dict({"model": "sawtooth"}), "model"),
    (lambda: profile_from_dict({"model": "periodic", "frequency": 1.0}), "frequency"),
    (lambda: profile_from_dict({"model": "swift_xrt", "name": "GRB_1"}), "name"),
    (lambda: profile_from_dict({"model": "swift_xrt", "name": "GRB_1", "trigger_time": 0.0,
                                "times": [1.0, 2.0]}), "times"),  # fmt: skip
    (lambda: profile_from_dict({"model": "swift_xrt", "name": "GRB_1", "trigger_time": 0.0,
                                "times": [1.0, 2.0], "rates": [1.0, 0.5], "colour": "x"}), "colour"),  # fmt: skip
    (lambda: profile_from_dict({"model": "grb", "flares": [{"t_peak": 500.0, "width": 3.0}]}), "flares"),
    (lambda: SwiftTemplate("x", 0.0, np.array([2.0, 1.0]), np.array([1.0, 1.0])), "times"),
    (lambda: SwiftTemplate("x", 0.0, np.array([1.0, 2.0]), np.array([1.0, 0.0])), "rates"),
    (lambda: case_rng(-1), "seed"),
    (lambda: case_rng(1.5), "seed"),
    (lambda: component_seed(-3, 1), "seed"),
    (lambda: make_case("survey", 1), "case"),
    (lambda: DetectorSettings(onboard_threshold_kev=0.0), "onboard_threshold_kev"),
    (lambda: DetectorSettings.from_dict({"hot_pixels": [{"rawy": 3}]}), "hot_pixels"),
    (lambda: HotPixel(rawy=256, rawz=0), "hot_pixels"),
    (lambda: HotPixel(rawy=1, rawz=1, probability=1.5), "hot_pixels"),
    (lambda: WarmColumn(rawy=-1), "warm_columns"),
    (lambda: WarmColumn(rawy=3, rawz_min=10, rawz_max=5), "warm_columns"),
    (lambda: WarmColumn(rawy=3, flicker_frames=-1), "warm_columns"),
]


@pytest.mark.parametrize("make, keyword", REFUSED, ids=[f"{i:02d}-{k}" for i, (_, k) in enumerate(REFUSED)])
def test_refused_inputs_name_their_field(make, keyword):
    with pytest.raises(MXTInputError) as info:
        make()
    assert info.value.keyword == keyword, str(info.value)


def _scenario(**over):
    d = {"obs_id": "EDGE01", "tstart": T0, "duration": 200.0, "pointing": {"ra": 10.0, "dec": 20.0}}
    d.update(over)
    return d


SCENARIOS_REFUSED = [
    (_scenario(obs_id="bad id!"), "obs_id"),
    (_scenario(tstart=-5.0), "tstart"),
    (_scenario(duration=0.5), "duration"),
    (_scenario(frametime=20.0, duration=1000.0), "frametime"),
    (_scenario(attitude_dt="often"), None),  # float() of a word: refused, no keyword
    (_scenario(pointing=[10.0, 20.0]), "pointing"),
    (_scenario(pointing={"ra": 10.0}), "pointing.dec"),
    (_scenario(pointing={"ra": 10.0, "dec": 20.0, "jitter_arcsec": "lots"}), "jitter_arcsec"),
    (_scenario(pointing={"ra": 10.0, "dec": 20.0, "slew": {"ra": 0.0, "dec": 0.0, "speed": 1.0}}), "speed"),
    (_scenario(sources={"name": "a"}), "sources"),
    (_scenario(background={"cxb": "on"}), "background.cxb"),
    (_scenario(background={"sky": {}}), "sky"),
    (_scenario(sources=[{"name": "a", "ra": 1.0, "dec": 2.0, "flux": 1e-11, "spectrum": {"model": "powerlaw"}},
                        {"name": "a", "ra": 3.0, "dec": 2.0, "flux": 1e-11, "spectrum": {"model": "powerlaw"}}]),
     "sources"),  # fmt: skip
]


@pytest.mark.parametrize("doc, keyword", SCENARIOS_REFUSED, ids=[str(i) for i in range(len(SCENARIOS_REFUSED))])
def test_refused_scenarios_name_their_key(doc, keyword):
    with pytest.raises(MXTInputError) as info:
        scenario_from_dict(doc)
    if keyword is not None:
        assert info.value.keyword == keyword, str(info.value)


def test_scenario_defaults_and_switches():
    """``cxb: true`` gives the default CXB, ``false`` none; YAML exponent strings are numbers."""
    sc = scenario_from_dict(_scenario(background={"cxb": True, "particle": False},
                                      pointing={"ra": 10.0, "dec": 20.0, "jitter_arcsec": "1e0"}))  # fmt: skip
    assert isinstance(sc, Scenario)
    assert sc.cxb == CXBSettings() and sc.particle is None
    assert sc.pointing.jitter_arcsec == 1.0 and sc.tstop == T0 + 200.0
    back = scenario_from_dict(sc.to_dict())
    assert back.cxb == sc.cxb and back.particle is None and back.pointing == sc.pointing


# --------------------------------------------------------------------------------------
# Spectra: mono-energetic lines and band edges
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("energy", [0.5, 1.487, 5.895])
def test_delta_line_flux_is_the_transmitted_photon(energy):
    """A sigma = 0 line of unit area: photon flux = transmission, energy flux = E x that."""
    line = GaussianLine(energy=energy, sigma=0.0, nh=0.5)
    tr = float(transmission(energy, 0.5))
    assert 0.0 < tr < 1.0
    assert photon_flux(line, (0.2, 10.0)) == pytest.approx(tr, rel=1e-12)
    assert energy_flux(line, (0.2, 10.0)) == pytest.approx(energy * tr * KEV_TO_ERG, rel=1e-9)
    # Outside the band: nothing; the band is half-open [lo, hi).
    assert photon_flux(line, (energy + 0.1, 12.0)) == 0.0
    assert energy_flux(line, (0.1, energy)) == 0.0
    assert normalisation_for_flux(line, 2e-12, (0.2, 10.0)) * energy_flux(line, (0.2, 10.0)) == pytest.approx(2e-12)
    # Its continuous shape is zero everywhere (the photons are drawn at the line energy).
    assert not np.any(line.unabsorbed(np.linspace(0.2, 10.0, 50)))


def test_narrow_gaussian_tends_to_the_delta_line():
    narrow = GaussianLine(energy=1.487, sigma=1e-3, nh=0.2)
    delta = GaussianLine(energy=1.487, sigma=0.0, nh=0.2)
    assert photon_flux(narrow) == pytest.approx(photon_flux(delta), rel=1e-3)


def test_bad_band_is_refused():
    with pytest.raises(MXTInputError, match="bad energy band"):
        photon_flux(PowerLaw(), (5.0, 1.0))


# --------------------------------------------------------------------------------------
# Photons: empty and degenerate draws
# --------------------------------------------------------------------------------------


class _BrokenBound(Constant):
    """A profile whose envelope is negative: thinning cannot use it."""

    def bound(self, lo, hi):
        return -np.ones_like(np.asarray(lo, dtype=float))


def test_arrival_times_degenerate_cases():
    rng = np.random.default_rng(1)
    assert arrival_times(Constant(), 0.0, 0.0, 100.0, rng).size == 0
    with pytest.raises(MXTInputError, match="bound"):
        arrival_times(_BrokenBound(), 1.0, 0.0, 100.0, rng)
    with pytest.raises(MXTInputError, match="empty time span"):
        arrival_times(Constant(), 1.0, 100.0, 100.0, rng)


def test_energy_table_refusals_and_empty_batches():
    with pytest.raises(MXTInputError, match="bad energy range"):
        EnergyTable.from_function(np.ones_like, 2.0, 1.0)
    with pytest.raises(MXTInputError, match="finite and >= 0"):
        EnergyTable.from_function(lambda e: -np.ones_like(e), 0.5, 2.0)
    zero = EnergyTable.from_function(np.zeros_like, 0.5, 2.0)
    with pytest.raises(MXTInputError, match="zero density"):
        zero.sample_bins(3, np.random.default_rng(0))
    empty = PhotonBatch.concat([])
    assert empty.time.size == 0 and empty.frame.dtype == np.int64 and empty.component.dtype == np.int32


def test_batch_concat_sorts_by_time_and_keeps_rows_together():
    a = PhotonBatch(np.array([3.0, 1.0]), np.array([3, 1]), np.array([10.0, 11.0]), np.array([0.0, 0.0]),
                    np.array([1.0, 2.0]), np.array([1.0, 2.0]), np.array([0, 0], dtype=np.int32))  # fmt: skip
    b = PhotonBatch(np.array([2.0]), np.array([2]), np.array([12.0]), np.array([0.0]), np.array([3.0]),
                    np.array([3.0]), np.array([1], dtype=np.int32))  # fmt: skip
    c = PhotonBatch.concat([a, b])
    np.testing.assert_array_equal(c.time, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(c.rawy, [11.0, 12.0, 10.0])
    np.testing.assert_array_equal(c.component, [0, 1, 0])


# --------------------------------------------------------------------------------------
# Time profiles before their trigger
# --------------------------------------------------------------------------------------


def test_profiles_before_the_trigger_have_a_trivial_grid_and_no_photons():
    grb = CanonicalGRB(trigger_time=5000.0)
    np.testing.assert_array_equal(grb.grid(0.0, 4000.0), [0.0, 4000.0])
    assert np.all(grb.value(np.linspace(0.0, 4999.0, 20)) == 0.0)
    tpl = SwiftTemplate("x", 5000.0, np.array([100.0, 200.0, 400.0]), np.array([10.0, 5.0, 2.0]))
    np.testing.assert_array_equal(tpl.grid(0.0, 5000.0), [0.0, 5000.0])
    assert arrival_times(tpl, 1.0, 0.0, 5000.0, np.random.default_rng(0)).size == 0
    assert isinstance(profile_from_dict(None), Constant) and isinstance(profile_from_dict({}), Constant)


# --------------------------------------------------------------------------------------
# Swift-XRT folders with one mode, or too few bins
# --------------------------------------------------------------------------------------


def test_swift_folder_with_one_mode_or_none(tmp_path, monkeypatch):
    root = write_swift_folder(tmp_path / "swift", {"GRB 100101A": 500.0, "GRB 100202B": 800.0, "GRB 100303C": 700.0})
    # GRB 100101A: WT only (all its bins, in order); GRB 100202B: neither mode.
    (root / "PC" / "GRB_100101A.json").unlink()
    (root / "PC" / "GRB_100202B.json").unlink()
    (root / "WT" / "GRB_100202B.json").unlink()
    wt = json.loads((root / "WT" / "GRB_100101A.json").read_text())
    lc = read_swift_lightcurve("GRB 100101A", root)
    assert set(lc.mode) == {"WT"}
    np.testing.assert_allclose(lc.time, wt["Time"])
    with pytest.raises(MXTInputError, match="no Swift-XRT light curve"):
        read_swift_lightcurve("GRB 100202B", root)
    # A PC curve with one usable bin and no WT: too few bins for a template.
    (root / "WT" / "GRB_100303C.json").unlink()
    pc_path = root / "PC" / "GRB_100303C.json"
    pc = json.loads(pc_path.read_text())
    pc["Rate"] = [pc["Rate"][0]] + [0.0] * (len(pc["Rate"]) - 1)  # non-positive rates are dropped
    pc_path.write_text(json.dumps(pc))
    with pytest.raises(MXTInputError, match="fewer than 2 usable bins"):
        read_swift_lightcurve("GRB 100303C", root)
    # The listing needs a PC file (a size check only): GRB 100303C is listed, and every
    # draw of it fails to read, so the draw gives up with a clear error.
    assert list_swift_templates(root, min_bins=20) == ["GRB_100303C"]
    with pytest.raises(MXTInputError, match="no Swift-XRT template with >= 20 bins found in 5 draws"):
        choose_swift_template(np.random.default_rng(0), root, max_tries=5)
    # Without any data folder: an empty listing, and a clear error from the reader.
    monkeypatch.delenv("MXT_SWIFT_XRT_DATA", raising=False)
    monkeypatch.setattr("mxt_pipeline.datapaths.REPO_ROOT", tmp_path / "x" / "y")  # no ../shared/data
    missing = tmp_path / "nowhere"
    assert list_swift_templates(missing) == []
    with pytest.raises(MXTInputError, match="not available"):
        read_swift_lightcurve("GRB 100101A", missing)


def test_template_draw_skips_unreadable_curves(tmp_path):
    """A listed curve that fails to read is redrawn, never returned."""
    root = write_swift_folder(tmp_path / "swift", {"GRB 100101A": 500.0, "GRB 100202B": 800.0})
    # Large enough to pass the listing's size check, but not JSON: the draw redraws.
    (root / "PC" / "GRB_100202B.json").write_text("{broken" + " " * 5000)
    assert list_swift_templates(root) == ["GRB_100101A", "GRB_100202B"]
    names = {choose_swift_template(np.random.default_rng(s), root) for s in range(10)}
    assert names == {"GRB_100101A"}


# --------------------------------------------------------------------------------------
# Backgrounds and detector: switched-off parts and defect pixels
# --------------------------------------------------------------------------------------


def test_calibration_without_lines_and_particles_without_mips(calset):
    ctx = quiet_context(calset, 500.0)
    batch, info = calibration_events(CalibrationSettings(), ctx, np.random.default_rng(3), component=4)
    assert batch.time.size == 0 and info == {"photons": 0}
    settings = ParticleSettings(rate_cm2_s_kev=5e-3, mip_rate_cm2_s=0.0)
    batch, info = particle_events(settings, ctx, np.random.default_rng(4), component=2)
    assert info["mip_tracks"] == 0
    # Only the continuum: every deposit inside [e_min, e_max], on the chip, in the span.
    assert batch.time.size > 0
    assert np.all((batch.energy >= settings.e_min) & (batch.energy <= settings.e_max))
    assert np.all((batch.time >= ctx.tstart) & (batch.time <= ctx.tstop))
    assert np.all(batch.component == 2)


def test_empty_accumulation_and_silent_noise():
    key, q = accumulate(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    assert key.size == 0 and q.size == 0
    rng = np.random.default_rng(5)
    assert all(a.size == 0 for a in noise_hits(np.arange(10), 0.2, 0.0, rng))  # no read noise
    assert all(a.size == 0 for a in noise_hits(np.empty(0, np.int64), 0.2, 0.05, rng))  # no frame


def test_flickering_column_fires_in_at_most_k_frames():
    frames = np.arange(1000, 3000)
    rng = np.random.default_rng(6)
    col = WarmColumn(rawy=17, hits_per_pixel=3.0, flicker_frames=4, rawz_min=10, rawz_max=109)
    f, y, z, q = col.hits(frames, rng)
    assert f.size > 0 and len(np.unique(f)) <= 4 and np.all(np.isin(f, frames))
    assert np.all(y == 17) and z.min() >= 10 and z.max() <= 109
    # Poisson number of hits with mean hits_per_pixel x rows (4.5 sigma).
    assert abs(f.size - 300) < 4.5 * math.sqrt(300)
    assert WarmColumn(rawy=17).hits(np.empty(0, np.int64), rng)[0].size == 0


def test_hot_pixel_fires_in_its_share_of_frames(calset):
    """A hot pixel with probability p and amplitude ~ Exp(m) keV appears in a Binomial
    share of the frames read, minus the hits below the on-board threshold."""
    hot = HotPixel(rawy=40, rawz=200, probability=0.3, mean_kev=20.0)
    model = DetectorModel.from_calibration(calset, DetectorSettings(noise_hits=False, hot_pixels=(hot,),
                                                                    mask_bad_pixels=False))  # fmt: skip
    frames = np.arange(4000)
    empty_f = np.empty(0, np.int64)
    hits, detected = model.respond(empty_f, np.empty(0), np.empty(0), np.empty(0), np.empty(0), salt=1,
                                   frames_read=frames, rng=np.random.default_rng(7))  # fmt: skip
    assert detected.size == 0
    at = (hits["RAWY"] == 40) & (hits["RAWZ"] == 200)
    assert np.all(at), "only the hot pixel fires without photons and noise hits"
    assert len(np.unique(hits["FRAME"])) == at.sum()  # at most one hit per frame
    p_kept = hot.probability * math.exp(-model.onboard_threshold_kev / hot.mean_kev)
    n = frames.size
    assert stats.binomtest(int(at.sum()), n, p_kept).pvalue > 1e-4


def test_bad_time_from_no_samples_is_empty():
    gti = bad_time_from_samples(np.empty(0), np.empty(0, bool))
    assert isinstance(gti, GTI) and len(gti) == 0
