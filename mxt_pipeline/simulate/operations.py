"""Simulated operations: attitude with jitter and slew, ANG samples, SAA, ground-station passes.

* **Attitude** (:func:`make_attitude`): the commanded pointing (RA, Dec, roll) with an
  optional slew at the start (from a previous pointing, along the great circle at a
  constant angular rate, with the roll interpolated by spherical linear interpolation of
  the attitude) and a pointing jitter: independent Ornstein-Uhlenbeck processes (rms
  ``jitter_arcsec``, correlation time ``jitter_tau_s``) on the two cross axes and on the
  roll, sampled exactly (``x_{k+1} = x_k e^{-dt/tau} + sigma sqrt(1 - e^{-2 dt/tau}) N(0,1)``).
  The ATT file holds this true attitude: the star-tracker measurement error is not
  modelled (an assumption; the CALDB systematic of 25" covers it).
* **ANG** (:func:`make_angles`): elevation of the boresight above the Earth limb, and
  the Sun and Moon angles, from :mod:`.ephemeris`, every ``dt`` (10 s by default: the
  elevation changes by 0.6 deg between samples, interpolated linearly by the chain).
* **SAA** (:func:`weekly_saa`): passages of the orbit through the SAA outline, one
  table per week ``floor(MET / 604800)`` covering the whole week (as the science
  database delivers them); an interval crossing a week boundary is split at it.
* **Passes** (:func:`plan_passes`, :func:`split_into_passes`): the recorded frames are
  downlinked in ground-station passes.  Pass ``k`` delivers the frames recorded between
  the previous contact and its own, plus ``overlap_s`` of frames already sent (the
  on-board store re-sends the end of the previous dump), so consecutive passes overlap
  and duplicate frames.  With probability ``loss_probability`` a pass loses a
  contiguous chunk of ``loss_fraction`` of its span (a telemetry gap unless another pass
  covers it); the frame at the very end of a pass may be truncated (loss of signal in
  the middle of a frame: some of its hits are missing, and the next pass re-delivers it
  whole).  Pass numbers are shuffled (``shuffle``), so they need not follow time order.
  The GTI of each L1 file is the time it covers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from astropy.table import Table
from scipy.spatial.transform import Rotation, Slerp

from mxt_pipeline import constants as C
from mxt_pipeline.datamodel import (
    GTI,
    AngleTable,
    Attitude,
    RawHits,
    SAAIntervals,
    pointing_rotation,
    rotation_to_pointing,
    week_of,
)
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.simulate.ephemeris import (
    Orbit,
    SAARegion,
    angle_between_deg,
    earth_elevation_deg,
    moon_direction,
    sun_direction,
)

__all__ = [
    "Slew",
    "Pointing",
    "make_attitude",
    "make_angles",
    "weekly_saa",
    "PassSpec",
    "PassPlan",
    "plan_passes",
    "split_into_passes",
    "WEEK_S",
]

WEEK_S = 7 * 86400.0
_ARCSEC = math.pi / (180.0 * 3600.0)


@dataclass(frozen=True)
class Slew:
    """A slew at the start of the observation from ``(ra, dec, roll)`` at ``rate_deg_s``."""

    ra: float
    dec: float
    roll: float = 0.0
    rate_deg_s: float = 0.5

    def __post_init__(self):
        if not (self.rate_deg_s > 0):
            raise MXTInputError("slew rate must be > 0 deg/s", keyword="rate_deg_s")
        if not (-90 <= self.dec <= 90):
            raise MXTInputError("slew start Dec must be within [-90, 90] deg", keyword="dec")


@dataclass(frozen=True)
class Pointing:
    """Commanded pointing of the boresight (deg), jitter and optional initial slew."""

    ra: float
    dec: float
    roll: float = 0.0
    jitter_arcsec: float = 2.0
    jitter_tau_s: float = 30.0
    slew: Slew | None = None

    def __post_init__(self):
        if not (-90 <= self.dec <= 90) or not all(math.isfinite(v) for v in (self.ra, self.dec, self.roll)):
            raise MXTInputError(f"pointing RA/Dec/roll must be finite with |Dec| <= 90, got {self.ra}, {self.dec}", keyword="dec")
        if self.jitter_arcsec < 0 or self.jitter_tau_s <= 0:
            raise MXTInputError("jitter_arcsec must be >= 0 and jitter_tau_s > 0", keyword="jitter_arcsec")
        if isinstance(self.slew, Mapping):
            object.__setattr__(self, "slew", Slew(**self.slew))

    def slew_duration(self) -> float:
        """Seconds spent slewing (0 without a slew)."""
        if self.slew is None:
            return 0.0
        r0 = pointing_rotation(self.slew.ra, self.slew.dec, self.slew.roll)
        r1 = pointing_rotation(self.ra, self.dec, self.roll)
        angle = np.degrees((r1 * r0.inv()).magnitude())[0]
        return float(angle / self.slew.rate_deg_s)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return d


def _ar1(innov: np.ndarray, a: float, x0: float, block: int = 128) -> np.ndarray:
    """``x[k] = a x[k-1] + innov[k]`` with ``x[-1] = x0``, vectorised by blocks.

    Within a block ``x[k] = a^(k+1) x0' + sum_j a^(k-j) innov[j]`` is a scaled cumulative
    sum; blocks of 128 keep ``a^-128`` far from overflow for any correlation time
    longer than the sampling step.
    """
    out = np.empty(innov.size)
    powers = a ** np.arange(1, block + 1)
    inv = 1.0 / powers
    prev = x0
    for s in range(0, innov.size, block):
        w = innov[s : s + block]
        k = w.size
        out[s : s + k] = powers[:k] * (prev + np.cumsum(w * inv[:k]))
        prev = out[s + k - 1]
    return out


def _ou(rng: np.random.Generator, n: int, dt: float, sigma: float, tau: float) -> np.ndarray:
    """Stationary Ornstein-Uhlenbeck samples (exact discretisation)."""
    if sigma == 0 or n == 0:
        return np.zeros(n)
    a = math.exp(-dt / tau)
    b = sigma * math.sqrt(1.0 - a * a)
    w = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = sigma * w[0]
    x[1:] = _ar1(b * w[1:], a, x[0])
    return x


def make_attitude(pointing: Pointing, tstart: float, tstop: float, rng: np.random.Generator, *,
                  dt: float = 1.0, obs_id: str | None = None) -> Attitude:  # fmt: skip
    """True attitude samples every ``dt`` seconds over ``[tstart, tstop]`` (see module docstring)."""
    if not tstop > tstart:
        raise MXTInputError("attitude: tstop must be after tstart", keyword="tstop")
    n = int(math.ceil((tstop - tstart) / dt)) + 1
    t = tstart + dt * np.arange(n)
    target = pointing_rotation(pointing.ra, pointing.dec, pointing.roll)
    base = Rotation.from_quat(np.repeat(target.as_quat().reshape(1, 4), n, axis=0))
    if pointing.slew is not None:
        dur = pointing.slew_duration()
        start = pointing_rotation(pointing.slew.ra, pointing.slew.dec, pointing.slew.roll)
        slerp = Slerp([0.0, max(dur, 1e-9)], Rotation.concatenate([start, target]))
        base = slerp(np.clip(t - tstart, 0.0, max(dur, 1e-9)))
    sig = pointing.jitter_arcsec * _ARCSEC
    jit = np.stack(
        [_ou(rng, n, dt, sig, pointing.jitter_tau_s) for _ in range(3)], axis=-1
    )  # roll, cross-y, cross-z (rad), as a small rotation vector in the instrument frame
    rot = base * Rotation.from_rotvec(jit)
    q = rot.as_quat()
    # Keep a continuous quaternion sign (a slerp between samples takes the short way).
    flip = np.r_[False, np.sum(q[1:] * q[:-1], axis=1) < 0]
    q[np.cumsum(flip) % 2 == 1] *= -1

    ra, dec, roll = rotation_to_pointing(Rotation.from_quat(q))
    table = Table({"TIME": t, "QPARAM": q, "RA": ra, "DEC": dec, "ROLL": roll})
    return Attitude(table, meta={"OBS_ID": obs_id} if obs_id else None)


def make_angles(orbit: Orbit, attitude: Attitude, tstart: float, tstop: float, *, dt: float = 10.0,
                obs_id: str | None = None) -> AngleTable:  # fmt: skip
    """ANG samples: boresight elevation above the Earth limb, Sun and Moon angles (deg)."""
    n = int(math.ceil((tstop - tstart) / dt)) + 1
    t = tstart + dt * np.arange(n)
    bore = attitude.rotation(t).apply(np.array([1.0, 0.0, 0.0])).reshape(-1, 3)
    pos = orbit.position(t)
    table = Table(
        {
            "TIME": t,
            "EARTH_ELV": earth_elevation_deg(bore, pos).astype(np.float32),
            "SUN_ANGLE": angle_between_deg(bore, sun_direction(t)).astype(np.float32),
            "MOON_ANGLE": angle_between_deg(bore, moon_direction(t)).astype(np.float32),
        }
    )
    return AngleTable(table, meta={"OBS_ID": obs_id} if obs_id else None)


def weekly_saa(orbit: Orbit, region: SAARegion, tstart: float, tstop: float, *, step: float = 10.0) -> dict[int, SAAIntervals]:
    """SAA passages of every week overlapping ``[tstart, tstop]``, one table per week."""
    out = {}
    for week in range(int(week_of(tstart)), int(week_of(tstop)) + 1):
        w0, w1 = week * WEEK_S, (week + 1) * WEEK_S
        gti = region.passages(orbit, w0, w1, step=step)
        out[week] = SAAIntervals(Table({"START": gti.start, "STOP": gti.stop}), meta={"WEEK": week})
    return out


# ---- ground-station passes --------------------------------------------------------------


@dataclass(frozen=True)
class PassSpec:
    """One downlink: the span ``[start, stop)`` it covers, minus ``lost`` intervals."""

    pass_id: int
    station: str
    start: float
    stop: float
    lost: tuple[tuple[float, float], ...] = ()
    truncate_last_frame: bool = False

    @property
    def gti(self) -> GTI:
        g = GTI([self.start], [self.stop])
        if self.lost:
            g = g.subtract(GTI([a for a, _ in self.lost], [b for _, b in self.lost]))
        return g

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lost"] = [list(x) for x in self.lost]
        return d


@dataclass(frozen=True)
class PassPlan:
    """How to cut the observation into passes (``mode='auto'``) or the explicit passes.

    Attributes
    ----------
    mode : {'auto', 'explicit'}
    interval_s : float
        Mean time between contacts (about one orbit).
    interval_jitter : float
        Relative spread (uniform) of the intervals.
    overlap_s : float
        Data re-sent at the start of each pass (duplicated frames).
    loss_probability, loss_fraction : float
        Chance that a pass loses a chunk, and the chunk's share of the pass span.
    truncate_probability : float
        Chance that the last frame of a pass is cut (when the next pass re-sends it).
    shuffle : bool
        Number the passes in a random order (they may arrive out of order).
    stations : sequence of str
        Station names used in turn (placeholders, not the mission's station list).
    passes : sequence of mapping
        Explicit passes (``start``, ``stop``, optional ``pass_id``, ``station``, ``lost``).
    """

    mode: str = "auto"
    interval_s: float = 5800.0
    interval_jitter: float = 0.3
    overlap_s: float = 30.0
    loss_probability: float = 0.1
    loss_fraction: float = 0.05
    truncate_probability: float = 0.3
    shuffle: bool = True
    stations: tuple[str, ...] = ("GS-A", "GS-B", "GS-C")
    passes: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.mode not in ("auto", "explicit"):
            raise MXTInputError(f"passes.mode must be 'auto' or 'explicit', got {self.mode!r}", keyword="mode")
        if self.interval_s <= 0 or self.overlap_s < 0:
            raise MXTInputError("passes: interval_s must be > 0 and overlap_s >= 0", keyword="interval_s")
        for name in ("interval_jitter", "loss_probability", "loss_fraction", "truncate_probability"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0):
                raise MXTInputError(f"passes.{name} must be within [0, 1], got {v}", keyword=name)
        if self.mode == "explicit" and not self.passes:
            raise MXTInputError("passes.mode 'explicit' needs a 'passes' list", keyword="passes")
        object.__setattr__(self, "stations", tuple(self.stations))
        object.__setattr__(self, "passes", tuple(dict(p) for p in self.passes))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stations"] = list(self.stations)
        d["passes"] = [dict(p) for p in self.passes]
        return d


def _frame_edge(t: float, tstart: float, frametime: float) -> float:
    return tstart + round((t - tstart) / frametime) * frametime


def plan_passes(plan: PassPlan, tstart: float, tstop: float, rng: np.random.Generator,
                frametime: float = C.FRAME_TIME_S) -> list[PassSpec]:  # fmt: skip
    """The passes of an observation ``[tstart, tstop)``, boundaries on frame edges."""
    if plan.mode == "explicit":
        out = []
        for k, p in enumerate(plan.passes):
            try:
                start, stop = float(p["start"]), float(p["stop"])
            except (KeyError, TypeError, ValueError):
                raise MXTInputError(f"pass {k}: 'start' and 'stop' (s) are required", keyword="passes") from None
            if not stop > start:
                raise MXTInputError(f"pass {k}: stop must be after start", keyword="passes")
            lost = tuple((float(a), float(b)) for a, b in p.get("lost", ()))
            out.append(PassSpec(int(p.get("pass_id", k + 1)), str(p.get("station", plan.stations[k % len(plan.stations)])),
                                start, stop, lost, bool(p.get("truncate_last_frame", False))))  # fmt: skip
        ids = [p.pass_id for p in out]
        if len(set(ids)) != len(ids):
            raise MXTInputError(f"pass ids must be distinct, got {ids}", keyword="passes")
        return out
    # Contacts: the first after a random fraction of an interval, then every interval.
    bounds = [tstart]
    t = tstart + plan.interval_s * rng.uniform(0.3, 1.0)
    while t < tstop:
        bounds.append(_frame_edge(t, tstart, frametime))
        t += plan.interval_s * (1.0 + plan.interval_jitter * rng.uniform(-1.0, 1.0))
    bounds.append(tstop)
    bounds = sorted(set(bounds))
    n = len(bounds) - 1
    specs = []
    for k in range(n):
        a = bounds[k] if k == 0 else max(tstart, _frame_edge(bounds[k] - plan.overlap_s, tstart, frametime))
        b = bounds[k + 1]
        lost: tuple[tuple[float, float], ...] = ()
        if rng.uniform() < plan.loss_probability and plan.loss_fraction > 0:
            width = (b - a) * plan.loss_fraction
            c = _frame_edge(rng.uniform(a, b - width), tstart, frametime)
            d = _frame_edge(c + width, tstart, frametime)
            if d > c:
                lost = ((c, d),)
        truncate = k < n - 1 and plan.overlap_s >= frametime and rng.uniform() < plan.truncate_probability
        specs.append((a, b, lost, truncate))
    order = rng.permutation(n) if plan.shuffle else np.arange(n)
    out = []
    for k, (a, b, lost, trunc) in enumerate(specs):
        pid = int(order[k]) + 1
        out.append(PassSpec(pid, plan.stations[(pid - 1) % len(plan.stations)], float(a), float(b), lost, trunc))
    return out


def split_into_passes(hits: Mapping[str, np.ndarray], passes: Sequence[PassSpec], rng: np.random.Generator, *,
                      obs_id: str, object_name: str | None = None,
                      frametime: float = C.FRAME_TIME_S) -> list[RawHits]:  # fmt: skip
    """The L1 raw hits delivered by each pass (hits sorted by frame then pixel).

    A hit belongs to a pass when its frame time lies in the pass GTI; a truncated last
    frame keeps a random half of its hits (at least one hit is dropped).
    """
    t = np.asarray(hits["TIME"], dtype=float)
    frame = np.asarray(hits["FRAME"])
    out = []
    for p in passes:
        gti = p.gti
        sel = gti.contains(t)
        if p.truncate_last_frame and np.any(sel):
            last = frame[sel].max()
            idx = np.flatnonzero(sel & (frame == last))
            if idx.size >= 2:
                drop = rng.permutation(idx)[: max(1, idx.size // 2)]
                sel[drop] = False
        table = Table({k: np.asarray(hits[k])[sel] for k in ("TIME", "FRAME", "RAWY", "RAWZ", "PHA")})
        meta = {"OBS_ID": obs_id, "PASS_ID": p.pass_id, "STATION": p.station, "FRAMETIM": frametime}
        if object_name:
            meta["OBJECT"] = object_name
        out.append(RawHits(table, gti=gti, meta=meta))
    return out
