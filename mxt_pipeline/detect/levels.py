"""Calibrated profile-likelihood levels of the position errors near the detection threshold.

Why.  Wilks' theorem makes ``dC`` at the true position a chi-square with 2 degrees of
freedom, so ``dC <= 4.61`` holds the truth in 90% of observations.  It is an
asymptotic result, and near the detection threshold the sample that gets an error
radius at all is selected: a source is listed only when the counts it seems to have
clear the DET_ML threshold, so a faint source is listed when the noise under its spot
fluctuated up (Eddington bias; on the bench's standard observation, a 50-count source
is listed in a quarter of the runs, with a fitted 73 counts on median).  The profile
of such a fit is sharper than that of the true source and the ``dC = 4.61`` contour
holds the truth in about 84% of the listed runs (70 counts: 88%, 100 counts and
above: 90%).  No observable tells a lucky 50-count source from a 70-count one at the
same DET_ML, so the correction has to be calibrated, as catalogue position errors are
(the 4XMM catalogue rescales its statistical errors by an empirical factor): the
contour is traced at a level ``L_p(DET_ML)`` that is Wilks' value far above the
threshold and higher just above it.

The form.  ``L_p(ml) = W_p (1 + A_p exp(-(ml - ml_0) / S_p))`` for ``ml >= ml_0`` (the
DET_ML threshold of the calibration; the first node's value below it), with
``W_p = chi2.ppf(p, 2)``: two parameters per probability, and the asymptotic limit
built in.

The calibration (:func:`fit_levels`).  Monte-Carlo observations of on-axis sources
of several fluxes (the standard observation of :mod:`mxt_pipeline.acceptance.detection`)
give, for every listed source, its DET_ML and ``dC`` at its true position (which does
not depend on the levels).  For a candidate ``(A, S)`` the coverage of each flux is
the fraction ``k_c / n_c`` of its listed runs with ``dC_true <= L_p(DET_ML)``; the
calibration minimises ``chi2 = sum_c (k_c - n_c p)^2 / (n_c p (1 - p))``, the
coverages' deviations from ``p`` in units of their binomial errors (a grid search,
exact for this step-wise objective; ties go to the smaller inflation).  Coverage is
thus calibrated per flux, the frequentist requirement, not merely on average over a
flux distribution; the largest deviation is reported beside it.  The grid keeps
``A <= 1`` (at most a doubled level: beyond, the 68% level would pass Wilks' 90% one
and the asymptotic theory would not describe the profile at all) and ``S >= 1``: the
DET_ML of one source varies by several units between observations, so a level that
changes within less than a unit would fit the noise of the sample (two fluxes'
coverages can always be met exactly by a narrow spike at the threshold).

The result is a table of ``(DET_ML, DC68, DC90)`` nodes, stored with the localisation
systematic in the CALDB (extension ``DCLEVELS`` of the SYSERR file) and interpolated
linearly; a CALDB without it gives Wilks' levels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from mxt_pipeline.detect.radii import DC_68, DC_90, P_68, P_90
from mxt_pipeline.errors import MXTCalibrationError

__all__ = ["ErrorLevels", "WILKS", "level_form", "LevelFit", "fit_levels", "levels_from_fits", "coverage",
           "LevelCalibration"]


@dataclass(frozen=True)
class ErrorLevels:
    """dC levels of the 68.3% and 90% contours as a function of DET_ML.

    Attributes
    ----------
    det_ml : tuple of float
        Increasing DET_ML nodes (one node: constant levels).
    dc68, dc90 : tuple of float
        Levels at the nodes; linear interpolation between nodes, the end values beyond.
    origin : str
        Where the table comes from (written into the source list header).
    """

    det_ml: tuple[float, ...] = (0.0,)
    dc68: tuple[float, ...] = (DC_68,)
    dc90: tuple[float, ...] = (DC_90,)
    origin: str = "Wilks"

    def __post_init__(self) -> None:
        ml, l68, l90 = (np.asarray(v, float) for v in (self.det_ml, self.dc68, self.dc90))
        if not (ml.ndim == 1 and ml.size >= 1 and ml.shape == l68.shape == l90.shape):
            raise MXTCalibrationError("DET_ML, DC68 and DC90 need the same length (at least 1)", hdu="DCLEVELS")
        if not (np.all(np.isfinite(ml)) and np.all(np.diff(ml) > 0)):
            raise MXTCalibrationError("DET_ML nodes must be finite and increasing", hdu="DCLEVELS", column="DET_ML")
        for name, lev in (("DC68", l68), ("DC90", l90)):
            if not (np.all(np.isfinite(lev)) and np.all(lev > 0)):
                raise MXTCalibrationError(f"{name} levels must be finite and positive", hdu="DCLEVELS", column=name)
        if np.any(l90 <= l68):
            raise MXTCalibrationError("the 90% level must exceed the 68% level at every node", hdu="DCLEVELS",
                                      column="DC90")

    @classmethod
    def from_arrays(cls, det_ml, dc68, dc90, origin: str = "CALDB") -> ErrorLevels:
        """From array-likes (a CALDB table's columns)."""
        return cls(tuple(float(v) for v in np.ravel(det_ml)), tuple(float(v) for v in np.ravel(dc68)),
                   tuple(float(v) for v in np.ravel(dc90)), origin)

    @classmethod
    def from_form(cls, ml_0: float, amp68: float, scale68: float, amp90: float, scale90: float,
                  n_nodes: int = 97, origin: str = "calibrated") -> ErrorLevels:
        """Tabulate :func:`level_form` from ``ml_0`` out to 12 scales (inflation < 1e-5).

        Nodes are denser near ``ml_0`` (quadratic spacing), where the levels change most.
        """
        span = 12.0 * max(scale68, scale90, 1e-3)
        ml = ml_0 + span * np.linspace(0.0, 1.0, n_nodes) ** 2
        return cls.from_arrays(ml, level_form(ml, DC_68, amp68, scale68, ml_0), level_form(ml, DC_90, amp90, scale90, ml_0),
                               origin)

    @property
    def is_wilks(self) -> bool:
        """True when the levels are Wilks' constants."""
        return bool(np.allclose(self.dc68, DC_68, rtol=1e-9) and np.allclose(self.dc90, DC_90, rtol=1e-9))

    def at(self, det_ml: float) -> tuple[float, float]:
        """The (68%, 90%) levels for a source of this DET_ML (NaN: the first node's)."""
        x = float(det_ml) if np.isfinite(det_ml) else self.det_ml[0]
        return float(np.interp(x, self.det_ml, self.dc68)), float(np.interp(x, self.det_ml, self.dc90))


#: Wilks' levels: chi-square(2) quantiles at every DET_ML.
WILKS = ErrorLevels()


def level_form(det_ml, wilks: float, amplitude: float, scale: float, ml_0: float) -> np.ndarray:
    """``wilks * (1 + amplitude * exp(-(max(det_ml, ml_0) - ml_0) / scale))``."""
    x = np.maximum(np.asarray(det_ml, float), ml_0) - ml_0
    return wilks * (1.0 + amplitude * np.exp(-x / max(scale, 1e-12)))


def coverage(dc_true: np.ndarray, levels: np.ndarray) -> float:
    """Fraction of runs whose true position lies inside its contour (``dC_true <= level``)."""
    dc_true = np.asarray(dc_true, float)
    return float(np.mean(dc_true <= np.asarray(levels, float))) if dc_true.size else float("nan")


@dataclass(frozen=True)
class LevelFit:
    """Result of :func:`fit_levels` for one probability."""

    probability: float
    amplitude: float
    scale: float
    ml_0: float
    coverage: dict[str, float]  # case -> coverage with the fitted level
    coverage_wilks: dict[str, float]  # case -> coverage with Wilks' level
    worst_deviation: float
    chi2: float
    runs: dict[str, int]


def fit_levels(samples: Mapping[str, tuple[Sequence[float], Sequence[float]]], probability: float, ml_0: float, *,
               amplitudes: np.ndarray | None = None, scales: np.ndarray | None = None) -> LevelFit:
    """Calibration of ``(A, S)`` of :func:`level_form` on per-flux coverages (module docstring).

    Parameters
    ----------
    samples : mapping
        Case name -> ``(det_ml, dc_true)`` of its listed runs.
    probability : float
        Coverage wanted (0.6827 or 0.90).
    ml_0 : float
        DET_ML threshold of the runs (where the inflation is largest).
    amplitudes, scales : ndarray, optional
        Grids searched (default: A in 0-1 by 0.0025, S in 1-100 log-spaced, 120 values).

    Returns
    -------
    LevelFit
    """
    if not samples:
        raise ValueError("no calibration sample")
    wilks = float(2.0 * special.gammaincinv(1.0, probability))  # chi2.ppf(probability, 2)
    amplitudes = np.arange(0.0, 1.0 + 1e-9, 0.0025) if amplitudes is None else np.asarray(amplitudes, float)
    scales = np.geomspace(1.0, 100.0, 120) if scales is None else np.asarray(scales, float)
    cases = {k: (np.asarray(v[0], float), np.asarray(v[1], float)) for k, v in samples.items()}
    if any(ml.shape != dc.shape or ml.size == 0 for ml, dc in cases.values()):
        raise ValueError("every case needs DET_ML and dC_true of the same, non-zero length")
    worst = np.zeros((amplitudes.size, scales.size))
    chi2 = np.zeros_like(worst)
    for ml, dc in cases.values():
        # Inside iff dc <= W (1 + A e) <=> A >= (dc / W - 1) / e, with e = exp(-x / S):
        # for each scale, the coverage as a function of A is the empirical CDF of the
        # amplitude each run needs, evaluated on the amplitude grid (sorted search).
        x = np.maximum(ml, ml_0) - ml_0
        with np.errstate(over="ignore"):
            grow = np.exp(x[None, :] / scales[:, None])  # inf far above ml_0: no A helps
        excess = dc / wilks - 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            need = np.where(excess[None, :] <= 0, -np.inf, excess[None, :] * grow)  # (S, n)
        need = np.sort(need, axis=1)
        cov = np.stack([np.searchsorted(row, amplitudes, side="right") for row in need], axis=1) / dc.size  # (A, S)
        worst = np.maximum(worst, np.abs(cov - probability))
        chi2 += dc.size * (cov - probability) ** 2 / (probability * (1.0 - probability))
    # Ties: the least peak inflation, then the shortest scale (first in C order of the
    # increasing grids).
    best = chi2 <= chi2.min() * (1 + 1e-9) + 1e-12
    ia, js = np.unravel_index(int(np.flatnonzero(best.ravel())[0]), worst.shape)
    amp, scale = float(amplitudes[ia]), float(scales[js])
    fitted = {k: coverage(dc, level_form(ml, wilks, amp, scale, ml_0)) for k, (ml, dc) in cases.items()}
    plain = {k: coverage(dc, np.full(dc.shape, wilks)) for k, (ml, dc) in cases.items()}
    return LevelFit(float(probability), amp, scale, float(ml_0), fitted, plain, float(worst[ia, js]),
                    float(chi2[ia, js]), {k: int(dc.size) for k, (ml, dc) in cases.items()})


def levels_from_fits(fit68: LevelFit, fit90: LevelFit, origin: str = "calibrated") -> ErrorLevels:
    """The table of both calibrated levels."""
    if not (np.isclose(fit68.probability, P_68) and np.isclose(fit90.probability, P_90)):
        raise ValueError("fits of the 68.3% and 90% levels are needed")
    if fit68.ml_0 != fit90.ml_0:
        raise ValueError("both fits need the same DET_ML threshold")
    return ErrorLevels.from_form(fit68.ml_0, fit68.amplitude, fit68.scale, fit90.amplitude, fit90.scale, origin=origin)


@dataclass(frozen=True)
class LevelCalibration:
    """A calibration of the levels and its provenance: what the CALDB SYSERR file holds.

    Attributes
    ----------
    ml_0 : float
        DET_ML threshold of the simulated runs.
    amp68, scale68, amp90, scale90 : float
        ``(A, S)`` of :func:`level_form` for each probability.
    background : float
        Background per pixel and band of the runs (counts).
    cases : str
        Source counts of the simulated cases, comma-separated.
    seed : int
        Root seed of the simulations.
    """

    ml_0: float
    amp68: float
    scale68: float
    amp90: float
    scale90: float
    background: float
    cases: str
    seed: int

    @classmethod
    def from_fits(cls, fit68: LevelFit, fit90: LevelFit, background: float, seed: int) -> LevelCalibration:
        """From the fits of both probabilities (cases named ``<prefix>_<counts>``)."""
        cases = ",".join(c.split("_")[-1] for c in fit90.runs)
        return cls(fit90.ml_0, fit68.amplitude, fit68.scale, fit90.amplitude, fit90.scale, float(background), cases,
                   int(seed))

    def levels(self, origin: str = "calibrated") -> ErrorLevels:
        """The tabulated levels."""
        return ErrorLevels.from_form(self.ml_0, self.amp68, self.scale68, self.amp90, self.scale90, origin=origin)

    def table(self) -> dict[str, np.ndarray]:
        """Columns of the DCLEVELS extension (DET_ML, DC68, DC90)."""
        lv = self.levels()
        return {"DET_ML": np.asarray(lv.det_ml), "DC68": np.asarray(lv.dc68), "DC90": np.asarray(lv.dc90)}

    def keywords(self) -> dict[str, float | int | str]:
        """Provenance keywords of the DCLEVELS extension."""
        return {"CALMETH": "MC coverage per flux", "MLTHRESH": float(self.ml_0), "BKGPIX": float(self.background),
                "NSIMCASE": self.cases, "SIMSEED": int(self.seed), "AMP68": float(self.amp68),
                "SCALE68": float(self.scale68), "AMP90": float(self.amp90), "SCALE90": float(self.scale90)}
