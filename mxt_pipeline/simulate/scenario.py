"""Scenario files: one simulated observation as YAML (format in ``docs/simulation.md``).

A scenario holds every input of a simulation except the seed (given on the command
line) and the calibration (the CALDB).  The presets of :mod:`.cases` build scenarios;
``mxt simulate scenario FILE.yaml`` runs any of them.  Example::

    obs_id: SIM0001
    object: GRB 061121
    tstart: 3.0e8            # mission time (s) of the first frame
    duration: 10000          # s
    trigger_time: 2.9999970e8
    pointing: {ra: 147.23, dec: -13.18, roll: 0.0, jitter_arcsec: 2.0, jitter_tau_s: 30.0}
    orbit: {altitude_km: 625, inclination_deg: 30, raan_deg: 10, arg_lat_deg: 0}
    sources:
      - name: GRB 061121
        ra: 147.23
        dec: -13.18
        flux: 4.0e-11        # erg/cm2/s (0.3-10 keV) where the profile is 1
        spectrum: {model: powerlaw, index: 2.0, nh: 0.05}
        profile: {model: swift_xrt, name: GRB_061121, trigger_time: 2.9999970e8}
    background:
      cxb: {nh: 0.05}        # or false to switch it off
      particle: {}           # defaults
    detector: {}
    passes: {mode: auto, interval_s: 5800, overlap_s: 30}

Unknown keys are errors (a typo must not silently fall back to a default), reported as
:class:`~mxt_pipeline.errors.MXTInputError` naming the key.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from mxt_pipeline import constants as C
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.simulate.background import CalibrationSettings, CXBSettings, ParticleSettings
from mxt_pipeline.simulate.detector import DetectorSettings
from mxt_pipeline.simulate.ephemeris import Orbit, SAARegion
from mxt_pipeline.simulate.operations import PassPlan, Pointing, Slew
from mxt_pipeline.simulate.sources import Source

__all__ = ["Scenario", "dump_scenario", "scenario_from_dict"]

_TOP_KEYS = {
    "obs_id", "object", "tstart", "duration", "trigger_time", "frametime", "pointing", "orbit", "saa_region",
    "saa", "sources", "background", "detector", "passes", "caldb", "attitude_dt", "ang_dt",
}  # fmt: skip


@dataclass
class Scenario:
    """One observation to simulate (see the module docstring)."""

    obs_id: str
    tstart: float
    duration: float
    pointing: Pointing
    sources: list[Source] = field(default_factory=list)
    object: str = ""
    trigger_time: float | None = None
    frametime: float = C.FRAME_TIME_S
    orbit: Orbit = field(default_factory=Orbit)
    saa_region: SAARegion = field(default_factory=SAARegion)
    saa: bool = True
    cxb: CXBSettings | None = field(default_factory=CXBSettings)
    particle: ParticleSettings | None = field(default_factory=ParticleSettings)
    calibration: CalibrationSettings | None = None
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    passes: PassPlan = field(default_factory=PassPlan)
    caldb: dict[str, Any] = field(default_factory=dict)
    attitude_dt: float = 1.0
    ang_dt: float = 10.0

    def __post_init__(self):
        if not self.obs_id or not str(self.obs_id).replace("_", "").replace("-", "").isalnum():
            raise MXTInputError(f"obs_id must be a non-empty alphanumeric string, got {self.obs_id!r}", keyword="obs_id")
        for name in ("tstart", "duration", "frametime", "attitude_dt", "ang_dt"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise MXTInputError(f"{name} must be a finite number, got {v!r}", keyword=name)
        if self.tstart < 0:
            raise MXTInputError("tstart must be >= 0 (mission time)", keyword="tstart")
        if not self.duration >= 10 * self.frametime:
            raise MXTInputError("duration must cover at least 10 frames", keyword="duration")
        if not 0 < self.frametime <= 10:
            raise MXTInputError("frametime must be in (0, 10] s", keyword="frametime")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise MXTInputError(f"source names must be distinct, got {names}", keyword="sources")

    @property
    def tstop(self) -> float:
        return self.tstart + self.duration

    def to_dict(self) -> dict[str, Any]:
        """The scenario file form (round trip with :func:`scenario_from_dict`)."""
        bg: dict[str, Any] = {
            "cxb": self.cxb.to_dict() if self.cxb else False,
            "particle": self.particle.to_dict() if self.particle else False,
        }
        if bg["cxb"]:
            bg["cxb"].pop("norm_1kev_per_sr", None)
        if bg["particle"]:
            for k in ("detector_area_cm2", "depletion_um", "mip_loss_kev_um"):
                bg["particle"].pop(k, None)
        if self.calibration:
            bg["calibration"] = self.calibration.to_dict()
        pointing = {k: v for k, v in vars(self.pointing).items() if k != "slew"}
        pointing["slew"] = vars(self.pointing.slew).copy() if self.pointing.slew else None
        return {
            "obs_id": self.obs_id,
            "object": self.object,
            "tstart": float(self.tstart),
            "duration": float(self.duration),
            "trigger_time": None if self.trigger_time is None else float(self.trigger_time),
            "frametime": float(self.frametime),
            "pointing": pointing,
            "orbit": self.orbit.to_dict(),
            "saa_region": self.saa_region.to_dict(),
            "saa": bool(self.saa),
            "sources": [s.to_dict() for s in self.sources],
            "background": bg,
            "detector": self.detector.to_dict(),
            "passes": self.passes.to_dict(),
            "caldb": dict(self.caldb),
            "attitude_dt": float(self.attitude_dt),
            "ang_dt": float(self.ang_dt),
        }


def _sub(d: Mapping[str, Any], key: str) -> dict[str, Any]:
    v = d.get(key) or {}
    if not isinstance(v, Mapping):
        raise MXTInputError(f"{key} must be a mapping", keyword=key)
    return dict(v)


def _build(cls, params: Mapping[str, Any], where: str):
    allowed = set(cls.__dataclass_fields__)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise MXTInputError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}", keyword=unknown[0])
    params = dict(params)
    for name, fld in cls.__dataclass_fields__.items():
        value = params.get(name)
        # YAML 1.1 reads an exponent without a sign or dot ("3.0e8", "1e-3") as a string:
        # numeric fields take such strings, and anything else is refused with its key.
        if isinstance(value, str) and str(fld.type).split("|")[0].strip() in ("float", "int"):
            try:
                params[name] = float(value) if "float" in str(fld.type) else int(value)
            except ValueError:
                raise MXTInputError(f"{where}.{name}: {value!r} is not a number", keyword=name) from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise MXTInputError(f"{where}: {exc}", keyword=where) from None


def scenario_from_dict(d: Mapping[str, Any], *, data_dir: str | os.PathLike[str] | None = None) -> Scenario:
    """Build a :class:`Scenario` from its dict form (a parsed YAML file).

    Parameters
    ----------
    d : mapping
    data_dir : path-like, optional
        Folder of the Swift-XRT light curves, for ``swift_xrt`` profiles given by name.

    Raises
    ------
    MXTInputError
        Missing or unknown keys, values out of range.
    """
    if not isinstance(d, Mapping):
        raise MXTInputError("a scenario must be a mapping")
    unknown = sorted(set(d) - _TOP_KEYS)
    if unknown:
        raise MXTInputError(f"scenario: unknown key(s) {unknown}", keyword=unknown[0])
    for key in ("tstart", "duration", "pointing"):
        if key not in d:
            raise MXTInputError(f"scenario: missing key {key!r}", keyword=key)
    p = _sub(d, "pointing")
    slew = p.pop("slew", None)
    if slew:
        p["slew"] = _build(Slew, dict(slew), "pointing.slew")
    for k in ("ra", "dec"):
        if k not in p:
            raise MXTInputError(f"pointing: missing key {k!r}", keyword=f"pointing.{k}")
    pointing = _build(Pointing, p, "pointing")
    srcs = d.get("sources") or []
    if not isinstance(srcs, list):
        raise MXTInputError("sources must be a list", keyword="sources")
    sources = [Source.from_dict(s, data_dir=data_dir) for s in srcs]
    bg = _sub(d, "background")
    unknown = sorted(set(bg) - {"cxb", "particle", "calibration"})
    if unknown:
        raise MXTInputError(f"background: unknown key(s) {unknown}", keyword=unknown[0])

    def opt(key, cls, default_on=True):
        v = bg.get(key, {} if default_on else None)
        if v is False or v is None:
            return None
        if v is True:
            v = {}
        if not isinstance(v, Mapping):
            raise MXTInputError(f"background.{key} must be a mapping or false", keyword=f"background.{key}")
        return cls.from_dict(v)

    orbit = _build(Orbit, _sub(d, "orbit"), "orbit")
    if "epoch" not in _sub(d, "orbit"):
        orbit = Orbit(**{**orbit.to_dict(), "epoch": float(d["tstart"])})
    passes = _sub(d, "passes")
    if "passes" in passes:
        passes["passes"] = tuple(passes["passes"] or ())
    if "stations" in passes:
        passes["stations"] = tuple(passes["stations"])
    try:
        return Scenario(
            obs_id=str(d.get("obs_id", "SIM00000")),
            object=str(d.get("object", "") or ""),
            tstart=float(d["tstart"]),
            duration=float(d["duration"]),
            trigger_time=None if d.get("trigger_time") is None else float(d["trigger_time"]),
            frametime=float(d.get("frametime", C.FRAME_TIME_S)),
            pointing=pointing,
            orbit=orbit,
            saa_region=_build(SAARegion, _sub(d, "saa_region"), "saa_region"),
            saa=bool(d.get("saa", True)),
            sources=sources,
            cxb=opt("cxb", CXBSettings),
            particle=opt("particle", ParticleSettings),
            calibration=opt("calibration", CalibrationSettings, default_on=False),
            detector=DetectorSettings.from_dict(d.get("detector")),
            passes=_build(PassPlan, passes, "passes"),
            caldb=_sub(d, "caldb"),
            attitude_dt=float(d.get("attitude_dt", 1.0)),
            ang_dt=float(d.get("ang_dt", 10.0)),
        )
    except (TypeError, ValueError) as exc:
        raise MXTInputError(f"scenario: {exc}") from None


def dump_scenario(scenario: Scenario) -> str:
    """The scenario as YAML text (:func:`mxt_pipeline.io.simulated_dataset.write_scenario` writes it)."""
    return yaml.safe_dump(scenario.to_dict(), sort_keys=False, default_flow_style=None, width=100)
