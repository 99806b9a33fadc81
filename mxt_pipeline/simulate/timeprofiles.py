"""Time profiles of simulated sources: constant, periodic, analytic canonical GRB, Swift-XRT template.

A profile is a dimensionless multiplier ``p(t) >= 0`` of the source's reference flux
(the source's ``flux`` is its 0.3-10 keV flux where ``p = 1``).  Times are mission times
(TT seconds since MJDREF).  Every profile gives, besides ``value(t)``:

* ``bound(lo, hi)``: an upper bound of ``p`` on each interval ``[lo, hi]``, exact for
  these monotone or unimodal pieces, which makes photon arrival times an exact
  inhomogeneous Poisson process by thinning (Lewis & Shedler 1979; see
  :func:`mxt_pipeline.simulate.photons.arrival_times`);
* ``grid(tstart, tstop)``: segment edges on which ``bound`` is tight (log-spaced for
  decaying GRBs, a fraction of a period for periodic sources), so thinning rejects few
  candidates;
* ``to_dict()`` / :func:`profile_from_dict`: the scenario and ``truth.json`` form.

Models
------
``constant``
    ``p = 1``.
``periodic``
    ``p = 1 + A sin(2 pi (t - t0) / P + phase)``, ``0 <= A <= 1``.
``grb`` (canonical X-ray afterglow, Nousek et al. 2006, ApJ 642, 389)
    A continuous broken power law in ``tau = t - trigger``: steep decay ``tau^-alpha1``
    (alpha1 about 3-5) up to ``t_break1`` (about 300-500 s), a plateau ``tau^-alpha2``
    (0.2-0.8) up to ``t_break2`` (1e3-1e4 s), a normal decay ``tau^-alpha3`` (1-1.5), and
    optionally a jet break at ``t_jet`` (median about 1 day) after which ``tau^-alpha4``.
    The power law is normalised to 1 at ``tau = t_ref`` (1000 s by default) and held
    constant below ``tau_min`` (the prompt phase is not modelled).  Flares are added as
    pulses of the Norris et al. (2005, ApJ 627, 324) form
    ``exp(-tau1/(t - ts) - (t - ts)/tau2)`` scaled to peak at ``amplitude`` times the
    continuum at their peak time (flare shapes of this family were fitted to Swift-XRT
    flares by Chincarini et al. 2010).
``swift_xrt``
    A real Swift-XRT light curve (UK Swift Science Data Centre repository, Evans et al.
    2007, 2009): ``p`` is the XRT count rate (counts/s, 0.3-10 keV): the bin's rate
    inside each bin (so the template's bin averages are reproduced exactly), a power
    law between the rates of consecutive bins across the gaps between them (log-log
    linear; Swift's orbital gaps), the first bin's rate before it, and after the last bin
    a decay with the log-log slope fitted to the last five bins (clipped to <= 0).  The source's ``flux`` is then the
    flux of one XRT count/s, about 4e-11 erg cm^-2 s^-1 for a photon index of 2 (the
    repository's README), so that the MXT count rate follows from folding the
    source spectrum through the MXT response.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mxt_pipeline.datapaths import swift_xrt_dir
from mxt_pipeline.errors import MXTFormatError, MXTInputError

__all__ = [
    "TimeProfile",
    "Constant",
    "Periodic",
    "Flare",
    "CanonicalGRB",
    "SwiftTemplate",
    "profile_from_dict",
    "SwiftLightCurve",
    "read_swift_lightcurve",
    "list_swift_templates",
    "choose_swift_template",
    "swift_grb_table",
    "template_file_name",
]


class TimeProfile:
    """Base class of the time profiles (see the module docstring)."""

    MODEL: ClassVar[str] = ""

    def value(self, t: np.ndarray | float) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def bound(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def grid(self, tstart: float, tstop: float) -> np.ndarray:
        """Segment edges covering ``[tstart, tstop]`` (default: one segment)."""
        return np.array([tstart, tstop], dtype=float)

    def integral(self, tstart: float, tstop: float, n_per_segment: int = 64) -> float:
        """``integral of p(t) dt`` over ``[tstart, tstop]`` (s), by Gauss-Legendre on the grid."""
        edges = self.grid(tstart, tstop)
        x, w = np.polynomial.legendre.leggauss(n_per_segment)
        lo, hi = edges[:-1, None], edges[1:, None]
        t = 0.5 * (hi - lo) * x[None, :] + 0.5 * (hi + lo)
        return float(np.sum(0.5 * (hi - lo) * w[None, :] * self.value(t)))

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


def _log_grid(t0: float, lo: float, hi: float, per_decade: int, extra: Sequence[float] = ()) -> np.ndarray:
    """Edges on [lo, hi] log-spaced in ``t - t0`` (``per_decade`` per decade), plus ``extra``."""
    tau_lo = max(lo - t0, 1e-3)
    tau_hi = max(hi - t0, tau_lo * 1.0001)
    n = max(2, int(math.ceil(per_decade * math.log10(tau_hi / tau_lo))) + 1)
    edges = t0 + np.geomspace(tau_lo, tau_hi, n)
    edges = np.concatenate([[lo, hi], edges, np.asarray(extra, dtype=float)])
    edges = np.unique(edges[(edges >= lo) & (edges <= hi)])
    return edges


# ---- constant and periodic --------------------------------------------------------------


@dataclass(frozen=True)
class Constant(TimeProfile):
    """``p(t) = 1``."""

    MODEL: ClassVar[str] = "constant"

    def value(self, t):
        return np.ones_like(np.asarray(t, dtype=float))

    def bound(self, lo, hi):
        return np.ones_like(np.asarray(lo, dtype=float))

    def to_dict(self):
        return {"model": self.MODEL}


@dataclass(frozen=True)
class Periodic(TimeProfile):
    """``p(t) = 1 + amplitude sin(2 pi (t - t0) / period + phase)`` (phase in radians)."""

    period: float = 100.0
    amplitude: float = 0.5
    t0: float = 0.0
    phase: float = 0.0
    MODEL: ClassVar[str] = "periodic"

    def __post_init__(self):
        if not (self.period > 0 and math.isfinite(self.period)):
            raise MXTInputError(f"periodic: period must be > 0 s, got {self.period}", keyword="period")
        if not (0.0 <= self.amplitude <= 1.0):
            raise MXTInputError(f"periodic: amplitude must be in [0, 1], got {self.amplitude}", keyword="amplitude")

    def _phase(self, t):
        return 2 * np.pi * (np.asarray(t, dtype=float) - self.t0) / self.period + self.phase

    def value(self, t):
        return 1.0 + self.amplitude * np.sin(self._phase(t))

    def bound(self, lo, hi):
        """Exact maximum on each interval: 1 + A if a crest lies inside, else the larger end."""
        a, b = self._phase(lo), self._phase(hi)
        # Crests at phase pi/2 + 2 pi k: is there one in [a, b]?
        k = np.ceil((a - np.pi / 2) / (2 * np.pi))
        crest = np.pi / 2 + 2 * np.pi * k <= b
        ends = np.maximum(np.sin(a), np.sin(b))
        return 1.0 + self.amplitude * np.where(crest, 1.0, ends)

    def grid(self, tstart, tstop):
        n = max(1, int(math.ceil((tstop - tstart) / self.period * 16)))
        return np.linspace(tstart, tstop, n + 1)

    def to_dict(self):
        return {"model": self.MODEL, "period": self.period, "amplitude": self.amplitude, "t0": self.t0, "phase": self.phase}


# ---- analytic canonical GRB ---------------------------------------------------------------


@dataclass(frozen=True)
class Flare:
    """An X-ray flare: Norris et al. (2005) pulse peaking at ``t_peak`` s after the trigger.

    ``amplitude`` is the peak flux over the continuum at ``t_peak``; ``tau1`` (rise) and
    ``tau2`` (decay) in seconds; the pulse starts at ``t_peak - sqrt(tau1 tau2)``.
    """

    t_peak: float
    amplitude: float
    tau1: float
    tau2: float

    def __post_init__(self):
        for name in ("t_peak", "amplitude", "tau1", "tau2"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise MXTInputError(f"flare: {name} must be a positive number, got {v!r}", keyword=name)
        if self.t_peak <= math.sqrt(self.tau1 * self.tau2):
            raise MXTInputError("flare: the pulse would start before the trigger (t_peak <= sqrt(tau1 tau2))", keyword="t_peak")

    @property
    def t_start(self) -> float:
        return self.t_peak - math.sqrt(self.tau1 * self.tau2)

    def shape(self, tau: np.ndarray) -> np.ndarray:
        """The pulse normalised to 1 at its peak (0 before its start)."""
        x = np.asarray(tau, dtype=float) - self.t_start
        out = np.zeros_like(x)
        pos = x > 0
        lam = 2.0 * math.sqrt(self.tau1 / self.tau2)
        xp = x[pos]
        out[pos] = np.exp(lam - self.tau1 / xp - xp / self.tau2)
        return out

    def to_dict(self):
        return {"t_peak": self.t_peak, "amplitude": self.amplitude, "tau1": self.tau1, "tau2": self.tau2}


@dataclass(frozen=True)
class CanonicalGRB(TimeProfile):
    """Canonical X-ray afterglow of Nousek et al. (2006) with optional jet break and flares.

    All times after the trigger are in seconds; ``trigger_time`` is a mission time.
    """

    trigger_time: float = 0.0
    alpha1: float = 3.0
    t_break1: float = 400.0
    alpha2: float = 0.5
    t_break2: float = 5000.0
    alpha3: float = 1.2
    t_jet: float | None = None
    alpha4: float = 2.2
    t_ref: float = 1000.0
    tau_min: float = 30.0
    flares: tuple[Flare, ...] = field(default_factory=tuple)
    MODEL: ClassVar[str] = "grb"

    def __post_init__(self):
        breaks = [self.tau_min, self.t_break1, self.t_break2] + ([self.t_jet] if self.t_jet is not None else [])
        if any(not (math.isfinite(b) and b > 0) for b in breaks) or any(np.diff(breaks) <= 0):
            raise MXTInputError(
                f"grb: need 0 < tau_min < t_break1 < t_break2 (< t_jet), got {breaks}", keyword="t_break1"
            )
        for name in ("alpha1", "alpha2", "alpha3", "alpha4"):
            a = getattr(self, name)
            if not (-1.0 <= a <= 8.0):
                raise MXTInputError(f"grb: {name} must lie in [-1, 8], got {a}", keyword=name)
        if not self.t_ref > 0:
            raise MXTInputError("grb: t_ref must be > 0 s", keyword="t_ref")
        object.__setattr__(self, "flares", tuple(f if isinstance(f, Flare) else Flare(**f) for f in self.flares))

    # breaks and indices of the continuum, in tau
    def _segments(self) -> tuple[np.ndarray, np.ndarray]:
        breaks = [self.t_break1, self.t_break2] + ([self.t_jet] if self.t_jet is not None else [])
        alphas = [self.alpha1, self.alpha2, self.alpha3] + ([self.alpha4] if self.t_jet is not None else [])
        return np.asarray(breaks, dtype=float), np.asarray(alphas, dtype=float)

    def _log_continuum(self, tau: np.ndarray) -> np.ndarray:
        """log of the unnormalised continuous broken power law at tau (> 0)."""
        breaks, alphas = self._segments()
        lt = np.log(np.maximum(tau, self.tau_min))
        lb = np.log(breaks)
        # log f at each break, continuity from f(tau) = tau^-alpha1 in the first segment.
        lf_b = np.empty(len(breaks))
        prev_l, prev_f = 0.0, 0.0
        for i, b in enumerate(lb):
            prev_f = prev_f - alphas[i] * (b - prev_l)
            prev_l = b
            lf_b[i] = prev_f
        k = np.searchsorted(lb, lt, side="right")  # segment index 0..len(breaks)
        anchor_l = np.r_[0.0, lb][k]
        anchor_f = np.r_[0.0, lf_b][k]
        return anchor_f - alphas[k] * (lt - anchor_l)

    def continuum(self, t: np.ndarray | float) -> np.ndarray:
        """The power-law part, 1 at ``t_ref`` after the trigger, 0 before the trigger."""
        tau = np.asarray(t, dtype=float) - self.trigger_time
        norm = self._log_continuum(np.asarray([self.t_ref]))[0]
        out = np.exp(self._log_continuum(np.where(tau > 0, tau, 1.0)) - norm)
        return np.where(tau > 0, out, 0.0)

    def value(self, t):
        t = np.asarray(t, dtype=float)
        out = self.continuum(t)
        tau = t - self.trigger_time
        for f in self.flares:
            peak = float(self.continuum(self.trigger_time + f.t_peak))
            out = out + f.amplitude * peak * f.shape(tau)
        return out

    def bound(self, lo, hi):
        lo = np.asarray(lo, dtype=float)
        hi = np.asarray(hi, dtype=float)
        # The continuum is monotone between breaks (and constant below tau_min): its
        # maximum on [lo, hi] is at an end or at a break inside.
        breaks, _ = self._segments()
        pts = [lo, hi]
        for b in np.r_[self.tau_min, breaks] + self.trigger_time:
            pts.append(np.clip(b, lo, hi))
        out = np.max([self.continuum(p) for p in pts], axis=0)
        # Each flare is unimodal: its maximum is at the peak clipped into the interval.
        for f in self.flares:
            tp = self.trigger_time + f.t_peak
            peak = float(self.continuum(tp))
            out = out + f.amplitude * peak * f.shape(np.clip(tp, lo, hi) - self.trigger_time)
        return out

    def grid(self, tstart, tstop):
        t0 = self.trigger_time
        extra = [t0]
        breaks, _ = self._segments()
        extra += list(np.r_[self.tau_min, breaks] + t0)
        for f in self.flares:
            w = f.tau2 + math.sqrt(f.tau1 * f.tau2)
            extra += list(t0 + f.t_start + np.linspace(0.0, f.t_peak - f.t_start + 6 * w, 48))
        if tstop <= t0:
            return np.array([tstart, tstop], dtype=float)
        lo = max(tstart, t0)
        edges = _log_grid(t0, lo, tstop, 100, extra)
        return np.unique(np.r_[tstart, edges, tstop])

    def to_dict(self):
        d = {
            "model": self.MODEL,
            "trigger_time": self.trigger_time,
            "alpha1": self.alpha1,
            "t_break1": self.t_break1,
            "alpha2": self.alpha2,
            "t_break2": self.t_break2,
            "alpha3": self.alpha3,
            "t_jet": self.t_jet,
            "alpha4": self.alpha4,
            "t_ref": self.t_ref,
            "tau_min": self.tau_min,
            "flares": [f.to_dict() for f in self.flares],
        }
        return d


# ---- Swift-XRT templates --------------------------------------------------------------------


@dataclass(frozen=True)
class SwiftLightCurve:
    """One Swift-XRT light curve as read from the repository files (WT and PC merged)."""

    event: str
    time: np.ndarray  # s since the BAT trigger, bin centres
    time_lo: np.ndarray  # bin start
    time_hi: np.ndarray  # bin stop
    rate: np.ndarray  # XRT counts/s
    rate_err: np.ndarray  # mean 1-sigma error
    mode: np.ndarray  # 'WT' or 'PC' per bin
    nh_gal: float | None = None  # 1e22 cm^-2 (GRBtable.csv)
    redshift: float | None = None


def template_file_name(event: str) -> str:
    """File stem of an event: spaces and other separators replaced by ``_`` (README)."""
    return re.sub(r"[^A-Za-z0-9.+-]", "_", event.strip())


def _read_mode(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MXTFormatError(f"not a readable JSON light curve: {exc}", file=path) from None
    cols = {}
    for key in ("Time", "TimePos", "TimeNeg", "Rate", "RatePos", "RateNeg"):
        if key not in doc:
            raise MXTFormatError(f"missing column {key!r}", file=path, column=key)
        try:
            cols[key] = np.asarray(doc[key], dtype=float)
        except (TypeError, ValueError):
            raise MXTFormatError("non-numeric values", file=path, column=key) from None
    n = {v.size for v in cols.values()}
    if len(n) != 1:
        raise MXTFormatError(f"columns of unequal lengths {sorted(n)}", file=path)
    good = np.isfinite(cols["Time"]) & np.isfinite(cols["Rate"]) & (cols["Rate"] > 0)
    cols = {k: v[good] for k, v in cols.items()}
    cols["event"] = doc.get("event", path.stem)
    return cols


def swift_grb_table(data_dir: Path) -> dict[str, dict[str, Any]]:
    """``GRBtable.csv`` by file stem: ``{"nh_gal": float|None, "redshift": float|None, ...}``."""
    path = Path(data_dir) / "GRBtable.csv"
    out: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return out

    def num(s: str) -> float | None:
        try:
            v = float(s)
        except (TypeError, ValueError):
            return None
        return v if math.isfinite(v) else None

    with path.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            name = row.get("GRB")
            if not name:
                continue
            out[template_file_name(name)] = {
                "event": name,
                "nh_gal": num(row.get("NH_gal", "")),
                "redshift": num(row.get("Redshift", "")),
                "lc_type": row.get("lc type"),
                "flares": row.get("Flares"),
            }
    return out


def read_swift_lightcurve(name: str, data_dir: str | Path | None = None) -> SwiftLightCurve:
    """Read a Swift-XRT light curve by event name (``GRB_061121`` or ``GRB 061121``).

    WT bins are used up to the start of the first PC bin and PC bins after it (WT mode
    is used while the source is bright, so the two overlap little; keeping one mode at
    a time avoids interleaving two differently binned curves).

    Raises
    ------
    MXTInputError
        The data folder is absent or holds no light curve of that name.
    MXTFormatError
        A file is not a valid light curve.
    """
    root = swift_xrt_dir(data_dir)
    if root is None:
        raise MXTInputError("the Swift-XRT light curves are not available (set MXT_SWIFT_XRT_DATA or --data-dir)")
    stem = template_file_name(name)
    wt = _read_mode(root / "WT" / f"{stem}.json")
    pc = _read_mode(root / "PC" / f"{stem}.json")
    if wt is None and pc is None:
        raise MXTInputError(f"no Swift-XRT light curve named {stem!r}", file=root)
    parts = []
    pc_start = np.inf
    if pc is not None and pc["Time"].size:
        pc_start = float(np.min(pc["Time"] + pc["TimeNeg"]))
        parts.append((pc, "PC"))
    if wt is not None:
        keep = wt["Time"] < pc_start
        parts.append(({k: (v[keep] if isinstance(v, np.ndarray) else v) for k, v in wt.items()}, "WT"))
    cat = {k: np.concatenate([p[k] for p, _ in parts]) for k in ("Time", "TimePos", "TimeNeg", "Rate", "RatePos", "RateNeg")}
    mode = np.concatenate([np.full(p["Time"].size, m) for p, m in parts])
    order = np.argsort(cat["Time"], kind="stable")
    cat = {k: v[order] for k, v in cat.items()}
    mode = mode[order]
    # Drop repeated bin centres (a curve must be a function of time).
    keep = np.r_[True, np.diff(cat["Time"]) > 0]
    cat = {k: v[keep] for k, v in cat.items()}
    if cat["Time"].size < 2:
        raise MXTInputError(f"the light curve {stem!r} has fewer than 2 usable bins", file=root)
    meta = swift_grb_table(root).get(stem, {})
    event = (pc or wt)["event"]
    return SwiftLightCurve(
        event=str(event),
        time=cat["Time"],
        time_lo=cat["Time"] + cat["TimeNeg"],
        time_hi=cat["Time"] + cat["TimePos"],
        rate=cat["Rate"],
        rate_err=0.5 * (np.abs(cat["RatePos"]) + np.abs(cat["RateNeg"])),
        mode=mode[keep],
        nh_gal=meta.get("nh_gal"),
        redshift=meta.get("redshift"),
    )


def list_swift_templates(data_dir: str | Path | None = None, *, min_bins: int = 20) -> list[str]:
    """Sorted stems of the GRBs (names starting with ``GRB``) having a PC light curve of
    at least ``min_bins`` bins; empty when the data are absent."""
    root = swift_xrt_dir(data_dir)
    if root is None:
        return []
    out = []
    for path in sorted((root / "PC").glob("GRB*.json")):
        # A cheap size check first: each bin takes well over 100 bytes in the JSON.
        if path.stat().st_size < min_bins * 100:
            continue
        out.append(path.stem)
    return out


def choose_swift_template(rng: np.random.Generator, data_dir: str | Path | None = None, *, min_bins: int = 20,
                          max_tries: int = 50) -> str:  # fmt: skip
    """Draw a template name uniformly among :func:`list_swift_templates` (reproducible from ``rng``).

    Candidates with fewer than ``min_bins`` usable bins are redrawn.
    """
    names = list_swift_templates(data_dir, min_bins=min_bins)
    if not names:
        raise MXTInputError("no Swift-XRT light curves available to draw a template from")
    for _ in range(max_tries):
        name = names[int(rng.integers(len(names)))]
        try:
            lc = read_swift_lightcurve(name, data_dir)
        except (MXTInputError, MXTFormatError):
            continue
        if lc.time.size >= min_bins:
            return name
    raise MXTInputError(f"no Swift-XRT template with >= {min_bins} bins found in {max_tries} draws")


@dataclass(frozen=True, eq=False)
class SwiftTemplate(TimeProfile):
    """A Swift-XRT light curve as a profile (value: XRT counts/s), see the module docstring.

    With the bin edges (``t_lo``, ``t_hi``, seconds after the trigger) the profile is
    the bin's rate inside each bin - so the template's bin averages are reproduced
    exactly - and a power law between the rates of two bins across the gaps between
    them (Swift's orbital gaps).  Without edges, the power law runs through the bin
    centres ``times``.  Before the first bin the first rate is held; after the last bin
    the rate decays with the log-log slope fitted to the last five bins (<= 0).

    Build with :meth:`from_name` (reads the data) or from the arrays, which is how a
    ``truth.json`` or scenario replays a template without the data.
    """

    name: str
    trigger_time: float
    times: np.ndarray
    rates: np.ndarray
    t_lo: np.ndarray | None = None
    t_hi: np.ndarray | None = None
    MODEL: ClassVar[str] = "swift_xrt"

    def __post_init__(self):
        t = np.asarray(self.times, dtype=float)
        r = np.asarray(self.rates, dtype=float)
        if t.ndim != 1 or t.shape != r.shape or t.size < 2:
            raise MXTInputError("swift_xrt: times and rates must be 1-D of equal length >= 2", keyword="times")
        if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0) and t[0] > 0):
            raise MXTInputError("swift_xrt: times must be positive and strictly increasing", keyword="times")
        if not (np.all(np.isfinite(r)) and np.all(r > 0)):
            raise MXTInputError("swift_xrt: rates must be positive", keyword="rates")
        object.__setattr__(self, "times", t)
        object.__setattr__(self, "rates", r)
        if (self.t_lo is None) != (self.t_hi is None):
            raise MXTInputError("swift_xrt: give both t_lo and t_hi, or neither", keyword="t_lo")
        if self.t_lo is not None:
            lo = np.asarray(self.t_lo, dtype=float)
            hi = np.asarray(self.t_hi, dtype=float)
            if lo.shape != t.shape or hi.shape != t.shape or not np.all((lo > 0) & (lo <= t) & (t <= hi)):
                raise MXTInputError("swift_xrt: need 0 < t_lo <= times <= t_hi, one edge pair per bin", keyword="t_lo")
            # Successive bins of the repository may overlap by rounding (1 ms): clip.
            hi = np.r_[np.minimum(hi[:-1], lo[1:]), hi[-1]]
            object.__setattr__(self, "t_lo", lo)
            object.__setattr__(self, "t_hi", hi)
            # Nodes of the interpolation across the gaps: both edges of every bin at its
            # rate (:meth:`value` sets the rate inside the bins explicitly).
            nt = np.ravel(np.column_stack([lo, hi]))
            nr = np.repeat(r, 2)
            keep = np.r_[True, np.diff(nt) > 0]  # touching bins share an edge node
            nt, nr = nt[keep], nr[keep]
        else:
            nt, nr = t, r
        lt, lr = np.log(t), np.log(r)
        k = min(5, t.size)
        slope = np.polyfit(lt[-k:], lr[-k:], 1)[0]
        object.__setattr__(self, "_node_t", nt)
        object.__setattr__(self, "_node_r", nr)
        object.__setattr__(self, "_lt", np.log(nt))
        object.__setattr__(self, "_lr", np.log(nr))
        object.__setattr__(self, "_tail_slope", float(min(slope, 0.0)))

    @classmethod
    def from_name(cls, name: str, trigger_time: float, data_dir: str | Path | None = None) -> SwiftTemplate:
        lc = read_swift_lightcurve(name, data_dir)
        return cls(name=template_file_name(name), trigger_time=float(trigger_time), times=lc.time, rates=lc.rate,
                   t_lo=lc.time_lo, t_hi=lc.time_hi)  # fmt: skip

    def value(self, t):
        tau = np.asarray(t, dtype=float) - self.trigger_time
        pos = tau > 0
        lt = np.log(np.where(pos, tau, 1.0))
        # Power law between nodes (log-log linear); np.interp holds the first rate
        # before the first node.
        lr = np.interp(lt, self._lt, self._lr)
        if self.t_lo is not None:
            # Inside a bin: the bin's rate (bins may touch, so the step is explicit).
            k = np.searchsorted(self.t_lo, tau, side="right") - 1
            kk = np.clip(k, 0, self.rates.size - 1)
            inside = (k >= 0) & (tau < self.t_hi[kk])
            lr = np.where(inside, np.log(self.rates)[kk], lr)
        tail = self._lr[-1] + self._tail_slope * (lt - self._lt[-1])
        lr = np.where(lt > self._lt[-1], tail, lr)
        return np.where(pos, np.exp(lr), 0.0)

    def bound(self, lo, hi):
        lo = np.asarray(lo, dtype=float)
        hi = np.asarray(hi, dtype=float)
        out = np.maximum(self.value(lo), self.value(hi))
        # Monotone between nodes: the maximum is at an end or at a node inside (the
        # grid puts the nodes on the edges, so the loop is short).
        nodes = self.trigger_time + self._node_t
        i0 = np.searchsorted(nodes, lo, side="right")
        i1 = np.searchsorted(nodes, hi, side="left")
        for j in np.flatnonzero(i1 > i0):
            out[j] = max(out[j], float(self._node_r[i0[j]:i1[j]].max()))
        return out

    def grid(self, tstart, tstop):
        if tstop <= self.trigger_time:
            return np.array([tstart, tstop], dtype=float)
        nodes = self.trigger_time + self._node_t
        edges = _log_grid(self.trigger_time, max(tstart, self.trigger_time), tstop, 100, nodes)
        return np.unique(np.r_[tstart, edges, tstop])

    def to_dict(self):
        d = {
            "model": self.MODEL,
            "name": self.name,
            "trigger_time": self.trigger_time,
            "times": [float(x) for x in self.times],
            "rates": [float(x) for x in self.rates],
        }
        if self.t_lo is not None:
            d["t_lo"] = [float(x) for x in self.t_lo]
            d["t_hi"] = [float(x) for x in self.t_hi]
        return d


_PROFILES: dict[str, type[TimeProfile]] = {
    cls.MODEL: cls for cls in (Constant, Periodic, CanonicalGRB, SwiftTemplate)
}


def profile_from_dict(d: Mapping[str, Any] | None, *, data_dir: str | Path | None = None) -> TimeProfile:
    """Build a profile from its dict form (None or ``{}`` means constant).

    A ``swift_xrt`` profile takes either inline ``times``/``rates`` or a ``name``
    (``template``) read from the Swift-XRT data folder.

    Raises
    ------
    MXTInputError
        Unknown model or parameters (named in the message).
    """
    if not d:
        return Constant()
    if not isinstance(d, Mapping) or "model" not in d:
        raise MXTInputError("a time profile needs a 'model' key", keyword="model")
    model = str(d["model"]).lower()
    cls = _PROFILES.get(model)
    if cls is None:
        raise MXTInputError(f"unknown time profile {model!r}; known: {sorted(_PROFILES)}", keyword="model")
    params = {k: v for k, v in d.items() if k != "model"}
    if cls is SwiftTemplate:
        name = params.pop("name", None) or params.pop("template", None)
        trig = params.pop("trigger_time", None)
        if name is None or trig is None:
            raise MXTInputError("swift_xrt: 'name' (or 'template') and 'trigger_time' are required", keyword="name")
        if "times" in params or "rates" in params:
            if "times" not in params or "rates" not in params:
                raise MXTInputError("swift_xrt: give both 'times' and 'rates'", keyword="times")
            lo, hi = params.pop("t_lo", None), params.pop("t_hi", None)
            prof = SwiftTemplate(name=str(name), trigger_time=float(trig), times=np.asarray(params.pop("times")),
                                 rates=np.asarray(params.pop("rates")),
                                 t_lo=None if lo is None else np.asarray(lo), t_hi=None if hi is None else np.asarray(hi))
        else:
            prof = SwiftTemplate.from_name(str(name), float(trig), data_dir=params.pop("data_dir", data_dir))
        if params:
            raise MXTInputError(f"swift_xrt: unknown parameter(s) {sorted(params)}", keyword=sorted(params)[0])
        return prof
    allowed = set(cls.__dataclass_fields__)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise MXTInputError(f"{model}: unknown parameter(s) {unknown}; allowed: {sorted(allowed)}", keyword=unknown[0])
    if cls is CanonicalGRB and "flares" in params:
        flares = params["flares"] or []
        try:
            params["flares"] = tuple(Flare(**{k: float(v) for k, v in f.items()}) for f in flares)
        except TypeError as exc:
            raise MXTInputError(f"grb: bad flare {flares!r}: {exc}", keyword="flares") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise MXTInputError(f"{model}: {exc}", keyword="model") from None
