"""Preset cases: GRB (Swift-XRT template or analytic), GP (1-3 sources), Monte-Carlo.

Each preset turns a seed (and a few options) into a :class:`~.scenario.Scenario`, the
same object a scenario file describes, so any preset can be written out as YAML
(``mxt simulate ... --write-scenario``), edited and replayed.  Everything random in a
preset comes from ``SeedSequence(seed, spawn_key=(200,))``, a stream separate from the
photon streams of the bench.

Documented distributions
------------------------
Common to all cases:

* pointing: RA uniform in [0, 360), Dec with sin(Dec) uniform (isotropic), roll
  uniform in [0, 360) deg; jitter 2" rms with 30 s correlation time (assumptions);
* orbit: 625 km, 30 deg inclination (SVOM), node uniform in [0, 360); the argument of
  latitude at the start is drawn uniformly among the values for which the boresight is
  at least 10 deg above the Earth limb at the start (SVOM points at visible targets);
* epoch: ``tstart`` uniform over the 2026-2027 mission years
  (MET 2.84e8-3.47e8 s) for Monte-Carlo runs; presets use fixed defaults;
* passes: automatic (one contact per orbit, 30 s overlap, 10 % of the passes losing
  5 % of their span, shuffled numbering).

``grb``
    A Swift-XRT light curve (``template``: a name, or ``random`` for a draw among the
    GRBs with at least 20 PC bins) converted to flux with ``counts_to_flux`` erg
    cm^-2 s^-1 per XRT count/s (4e-11, photon index 2: the data README), absorbed power
    law of index 2 with the Galactic column of ``GRBtable.csv`` (0.05e22 cm^-2 when
    unknown).  When the real data are absent (named template or not; a logged warning
    says so), the analytic canonical afterglow (Nousek et al. 2006) with alpha1 = 3, alpha2 = 0.5,
    alpha3 = 1.2, breaks at 400 s and 5000 s and a flux of 2e-10 erg cm^-2 s^-1 at 1 ks
    (the flux of GRB 061121's template there) is used instead.  MXT starts observing
    ``delay`` s after the trigger (300 s: slew of the platform) with a final 10 deg slew
    at 0.5 deg/s; the burst lies off-axis by an offset of Rayleigh scale 4' (the
    ECLAIRs error box that the platform points at).
``gp``
    ``n_sources`` (1-3) constant-flux or variable sources.  The first is in the field;
    each other one is out of the field (35'-55' off-axis, along a detector axis or a
    diagonal, where only the cross arms reach the chip) with probability 1/2.  Flux
    log-uniform in 1e-12 - 1e-10 erg cm^-2 s^-1 (0.3-10 keV); spectrum: absorbed power
    law (index uniform 1.5-2.5, N_H log-uniform 0.01-1e22 cm^-2) or blackbody (kT
    uniform 0.1-1 keV, same N_H), each with probability 1/2; profile: constant (1/2),
    periodic (1/4; period log-uniform 100-3000 s, amplitude uniform 0.2-0.8) or a
    flare (1/4; the canonical GRB shape with a Norris pulse, trigger uniform in the
    first half of the observation).
``montecarlo``
    A random case per run: ``grb`` with probability 1/2 (template drawn at random when
    the data exist, otherwise the analytic afterglow with alpha1 uniform 3-5, alpha2
    0.2-0.8, alpha3 1-1.5, breaks log-uniform 300-500 s and 1e3-1e4 s, flux at 1 ks
    log-uniform 2e-12 - 2e-10, and one flare with probability 1/2), else ``gp`` with 1-3
    sources; duration log-uniform 2-20 ks.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from mxt_pipeline.datamodel import pointing_rotation
from mxt_pipeline.datapaths import swift_xrt_dir, swift_xrt_dir_of
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.geometry import angles_to_vectors, instrument_to_radec, radec_to_vectors
from mxt_pipeline.simulate.background import CXBSettings, ParticleSettings
from mxt_pipeline.simulate.ephemeris import Orbit, earth_elevation_deg
from mxt_pipeline.simulate.operations import PassPlan, Pointing, Slew
from mxt_pipeline.simulate.scenario import Scenario, scenario_from_dict
from mxt_pipeline.simulate.sources import Source
from mxt_pipeline.simulate.spectra import Blackbody, PowerLaw
from mxt_pipeline.simulate.timeprofiles import (
    CanonicalGRB,
    Constant,
    Flare,
    Periodic,
    SwiftTemplate,
    choose_swift_template,
    read_swift_lightcurve,
    template_file_name,
)

__all__ = [
    "CASES",
    "DEFAULT_TRIGGER_MET",
    "COUNTS_TO_FLUX",
    "case_rng",
    "grb_scenario",
    "gp_scenario",
    "montecarlo_scenario",
    "scenario_case",
    "make_case",
]

#: Trigger time of the ``grb`` preset (MET; 2026-07-06).
DEFAULT_TRIGGER_MET = 3.0e8
#: Swift-XRT counts/s to 0.3-10 keV flux (erg cm^-2 s^-1), photon index 2 (data README).
COUNTS_TO_FLUX = 4.0e-11
#: MET span of the Monte-Carlo epochs (2026-01-01 to 2027-12-31, approximately).
MC_EPOCH_RANGE = (2.84e8, 3.47e8)
_CASE_KEY = 200
_log = logging.getLogger(__name__)


def case_rng(seed: int) -> np.random.Generator:
    """The random stream of a preset (separate from the bench's photon streams)."""
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise MXTInputError(f"the seed must be an integer >= 0, got {seed!r}", keyword="seed")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(_CASE_KEY,)))


def _random_sky(rng: np.random.Generator) -> tuple[float, float]:
    ra = float(rng.uniform(0.0, 360.0))
    dec = float(np.degrees(np.arcsin(rng.uniform(-1.0, 1.0))))
    return ra, dec


def _visible_orbit(rng: np.random.Generator, ra: float, dec: float, tstart: float, min_elev: float = 10.0) -> Orbit:
    """An orbit (random node) whose start sees (ra, dec) at least ``min_elev`` above the limb."""
    raan = float(rng.uniform(0.0, 360.0))
    lat = np.arange(0.0, 360.0, 2.0)
    target = radec_to_vectors(ra, dec)
    ok = []
    for u in lat:
        orb = Orbit(raan_deg=raan, arg_lat_deg=float(u), epoch=tstart)
        if earth_elevation_deg(target, orb.position(tstart))[0] >= min_elev:
            ok.append(u)
    if not ok:  # pragma: no cover - a 625 km orbit always sees half the sky
        raise MXTInputError("no orbit phase sees the target")
    u = float(ok[int(rng.integers(len(ok)))]) + float(rng.uniform(0.0, 2.0))
    return Orbit(raan_deg=raan, arg_lat_deg=u, epoch=tstart)


def _offset_position(ra: float, dec: float, roll: float, dy_arcmin: float, dz_arcmin: float) -> tuple[float, float]:
    """RA/Dec at instrument angles (dy, dz) arcmin from a boresight (ra, dec, roll)."""
    rot: Rotation = pointing_rotation(ra, dec, roll)
    r, d = instrument_to_radec(angles_to_vectors(dy_arcmin, dz_arcmin), rot)
    return float(r[0]), float(d[0])


def _known_template(name: str, data_dir: str | os.PathLike[str] | None) -> str:
    """``name`` when the Swift-XRT folder has it; else an error listing close and known names."""
    root = swift_xrt_dir(data_dir)
    stem = template_file_name(name)
    if root is None or (root / "PC" / f"{stem}.json").is_file() or (root / "WT" / f"{stem}.json").is_file():
        return name
    known = sorted({p.stem for mode in ("PC", "WT") for p in (root / mode).glob("*.json")})
    close = difflib.get_close_matches(stem, known, n=5, cutoff=0.6)
    hint = f"close names: {', '.join(close)}; " if close else ""
    raise MXTInputError(
        f"--template {name!r}: no Swift-XRT light curve of that name ({hint}{len(known)} known, e.g. "
        f"{', '.join(known[:5])}; list them all with 'mxt simulate templates'); or use --template random "
        "or --template analytic", file=root)  # fmt: skip


def _common(rng: np.random.Generator, obs_id: str | None, seed: int) -> tuple[str, float]:
    roll = float(rng.uniform(0.0, 360.0))
    return (obs_id or f"SIM{seed % 10**8:08d}"), roll


def grb_scenario(
    seed: int,
    *,
    template: str | None = "GRB_061121",
    data_dir: str | os.PathLike[str] | None = None,
    trigger_time: float = DEFAULT_TRIGGER_MET,
    delay: float = 300.0,
    duration: float = 10000.0,
    counts_to_flux: float = COUNTS_TO_FLUX,
    obs_id: str | None = None,
    analytic: dict[str, Any] | None = None,
    slew_deg: float = 10.0,
) -> Scenario:
    """The GRB case (see the module docstring).

    Parameters
    ----------
    seed : int
    template : str or None
        Swift-XRT event (``GRB_061121``), ``"random"``, or None for the analytic burst.
    data_dir : path-like, optional
        Swift-XRT light-curve folder (default: :func:`mxt_pipeline.datapaths.swift_xrt_dir`).
    trigger_time, delay, duration : float
        Trigger (MET), start of MXT observation after it, observation length (s).
    counts_to_flux : float
        Flux (erg cm^-2 s^-1, 0.3-10 keV) of one XRT count/s.
    analytic : dict, optional
        Parameters of the analytic afterglow (``CanonicalGRB``) and ``flux_1ks``.
    slew_deg : float
        Length of the final slew at the start (0: none).

    Raises
    ------
    MXTInputError
        A named template is requested but the data are absent.
    """
    rng = case_rng(seed)
    obs_id, roll = _common(rng, obs_id, seed)
    ra_p, dec_p = _random_sky(rng)
    # The burst is near the boresight: Rayleigh offset (scale 4') in a random direction.
    off = float(rng.rayleigh(4.0))
    ang = float(rng.uniform(0.0, 2 * math.pi))
    ra, dec = _offset_position(ra_p, dec_p, roll, off * math.cos(ang), off * math.sin(ang))
    tstart = trigger_time + delay
    nh = 0.05
    if template is not None and data_dir is not None and swift_xrt_dir_of(data_dir) is None:
        raise MXTInputError("--data-dir holds no Swift-XRT light curves (no PC/ folder)", file=data_dir)
    use_template = template is not None and swift_xrt_dir(data_dir) is not None
    if template is not None and not use_template:
        # A newcomer without the real data still gets a GRB: the documented analytic
        # afterglow, with a notice rather than an error (README, docs/simulation.md).
        _log.warning("the Swift-XRT light curves were not found (--data-dir, $MXT_SWIFT_XRT_DATA, "
                     "../shared/data): template %s replaced by the analytic canonical GRB light curve", template)  # fmt: skip
    if use_template:
        name = choose_swift_template(rng, data_dir) if template == "random" else _known_template(template, data_dir)
        lc = read_swift_lightcurve(name, data_dir)
        if lc.nh_gal is not None:
            nh = float(lc.nh_gal)
        profile = SwiftTemplate(name=template_file_name(name), trigger_time=trigger_time, times=lc.time, rates=lc.rate,
                                t_lo=lc.time_lo, t_hi=lc.time_hi)  # fmt: skip
        flux = counts_to_flux
        label = lc.event
    else:
        params = dict(analytic or {})
        flux = float(params.pop("flux_1ks", 2e-10))
        profile = CanonicalGRB(trigger_time=trigger_time, **params)
        label = "GRB (analytic)"
    src = Source(name=label, ra=ra, dec=dec, flux=flux, spectrum=PowerLaw(index=2.0, nh=nh), profile=profile)
    slew = None
    if slew_deg > 0:
        # Start of the slew: slew_deg away from the target, towards a random direction.
        sra, sdec = _offset_position(ra_p, dec_p, roll, 60.0 * slew_deg * math.cos(ang + 1.0),
                                     60.0 * slew_deg * math.sin(ang + 1.0))  # fmt: skip
        slew = Slew(ra=sra, dec=sdec, roll=roll, rate_deg_s=0.5)
    pointing = Pointing(ra=ra_p, dec=dec_p, roll=roll, slew=slew)
    return Scenario(
        obs_id=obs_id,
        object=label,
        tstart=tstart,
        duration=duration,
        trigger_time=trigger_time,
        pointing=pointing,
        sources=[src],
        orbit=_visible_orbit(rng, ra_p, dec_p, tstart),
        cxb=CXBSettings(nh=nh),
        particle=ParticleSettings(),
        passes=PassPlan(),
    )


def _random_spectrum(rng: np.random.Generator):
    nh = float(10 ** rng.uniform(-2.0, 0.0))
    if rng.random() < 0.5:
        return PowerLaw(index=float(rng.uniform(1.5, 2.5)), nh=nh)
    return Blackbody(kt=float(rng.uniform(0.1, 1.0)), nh=nh)


def _random_profile(rng: np.random.Generator, tstart: float, duration: float):
    u = rng.random()
    if u < 0.5:
        return Constant()
    if u < 0.75:
        return Periodic(period=float(10 ** rng.uniform(2.0, math.log10(3000.0))), amplitude=float(rng.uniform(0.2, 0.8)),
                        t0=tstart, phase=float(rng.uniform(0, 2 * math.pi)))  # fmt: skip
    trig = tstart + float(rng.uniform(0.0, 0.5)) * duration
    t_peak = float(rng.uniform(100.0, 1000.0))
    flare = Flare(t_peak=t_peak, amplitude=float(rng.uniform(2.0, 10.0)), tau1=0.05 * t_peak, tau2=0.1 * t_peak)
    return CanonicalGRB(trigger_time=trig, flares=(flare,))


def gp_scenario(
    seed: int,
    *,
    n_sources: int = 2,
    duration: float = 10000.0,
    tstart: float = DEFAULT_TRIGGER_MET,
    obs_id: str | None = None,
    out_of_field: list[bool] | None = None,
) -> Scenario:
    """The GP case: 1-3 sources in or out of the field (module docstring).

    ``out_of_field`` forces the placement of sources 2 and 3 (None: random).
    """
    if not 1 <= int(n_sources) <= 3:
        raise MXTInputError(f"gp: n_sources must be 1, 2 or 3, got {n_sources}", keyword="sources")
    rng = case_rng(seed)
    obs_id, roll = _common(rng, obs_id, seed)
    ra_p, dec_p = _random_sky(rng)
    sources = []
    for k in range(int(n_sources)):
        outside = False if k == 0 else (bool(out_of_field[k - 1]) if out_of_field else bool(rng.random() < 0.5))
        if outside:
            r = float(rng.uniform(35.0, 55.0))
            axis_angle = float(rng.choice([0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0]))
            dy, dz = r * math.cos(math.radians(axis_angle)), r * math.sin(math.radians(axis_angle))
        else:
            dy, dz = rng.uniform(-22.0, 22.0, 2)
        ra, dec = _offset_position(ra_p, dec_p, roll, float(dy), float(dz))
        flux = float(10 ** rng.uniform(-12.0, -10.0))
        sources.append(Source(name=f"SRC{k + 1}", ra=ra, dec=dec, flux=flux, spectrum=_random_spectrum(rng),
                              profile=_random_profile(rng, tstart, duration)))  # fmt: skip
    return Scenario(
        obs_id=obs_id,
        object=f"GP field ({n_sources} source{'s' if n_sources > 1 else ''})",
        tstart=tstart,
        duration=duration,
        pointing=Pointing(ra=ra_p, dec=dec_p, roll=roll),
        sources=sources,
        orbit=_visible_orbit(rng, ra_p, dec_p, tstart),
        passes=PassPlan(),
    )


def montecarlo_scenario(seed: int, *, data_dir: str | os.PathLike[str] | None = None, obs_id: str | None = None) -> Scenario:
    """One random observation of the Monte-Carlo case (module docstring)."""
    rng = case_rng(seed)
    duration = float(10 ** rng.uniform(math.log10(2000.0), math.log10(20000.0)))
    epoch = float(rng.uniform(*MC_EPOCH_RANGE))
    sub_seed = int(rng.integers(0, 2**31 - 1))
    if rng.random() < 0.5:
        have_data = swift_xrt_dir(data_dir) is not None
        analytic = None
        if not have_data:
            flares = ()
            if rng.random() < 0.5:
                tp = float(10 ** rng.uniform(2.5, 3.5))
                flares = ({"t_peak": tp, "amplitude": float(rng.uniform(2, 10)), "tau1": 0.05 * tp, "tau2": 0.1 * tp},)
            analytic = {
                "alpha1": float(rng.uniform(3.0, 5.0)),
                "t_break1": float(10 ** rng.uniform(math.log10(300), math.log10(500))),
                "alpha2": float(rng.uniform(0.2, 0.8)),
                "t_break2": float(10 ** rng.uniform(3.0, 4.0)),
                "alpha3": float(rng.uniform(1.0, 1.5)),
                "flux_1ks": float(10 ** rng.uniform(math.log10(2e-12), math.log10(2e-10))),
                "flares": tuple(Flare(**f) for f in flares),
            }
        return grb_scenario(sub_seed, template="random" if have_data else None, data_dir=data_dir,
                            trigger_time=epoch, duration=duration, obs_id=obs_id or f"MC{seed % 10**8:08d}",
                            analytic=analytic)  # fmt: skip
    return gp_scenario(sub_seed, n_sources=int(rng.integers(1, 4)), duration=duration, tstart=epoch,
                       obs_id=obs_id or f"MC{seed % 10**8:08d}")  # fmt: skip


def scenario_case(seed: int, *, scenario: Mapping[str, Any], data_dir: str | os.PathLike[str] | None = None) -> Scenario:
    """A user's scenario (the dict form of a scenario file), the same for every seed.

    The seed does not change the scenario: it drives the bench's photon, background,
    jitter and pass streams, so the runs of a campaign are independent realisations of
    one observation, each reproduced by ``mxt simulate scenario FILE.yaml --seed SEED``.

    Parameters
    ----------
    seed : int
        Unused by the scenario itself; kept for the signature of the presets.
    scenario : mapping
        The parsed scenario file (:func:`~.scenario.scenario_from_dict`).
    data_dir : path-like, optional
        Folder of the Swift-XRT light curves, for ``swift_xrt`` profiles given by name.

    Raises
    ------
    MXTInputError
        The scenario is not valid (the message names the key).
    """
    del seed  # the bench, not the scenario, takes the seed
    return scenario_from_dict(scenario, data_dir=data_dir)


CASES = ("grb", "gp", "montecarlo", "scenario")


def make_case(case: str, seed: int, **options: Any) -> Scenario:
    """The scenario of a preset by name (``grb``, ``gp``, ``montecarlo``) and options.

    This is what the campaign runner calls for each run.  The ``scenario`` case takes a
    user's scenario (option ``scenario``: the parsed file) and reuses it for every seed.
    """
    if case == "scenario":
        if "scenario" not in options:
            raise MXTInputError("the scenario case needs its scenario (mxt campaign run --scenario FILE.yaml)",
                                keyword="scenario")  # fmt: skip
        return scenario_case(seed, **options)
    if case == "grb":
        return grb_scenario(seed, **options)
    if case == "gp":
        return gp_scenario(seed, **options)
    if case == "montecarlo":
        return montecarlo_scenario(seed, **options)
    raise MXTInputError(f"unknown case {case!r}; known: {list(CASES)}", keyword="case")
