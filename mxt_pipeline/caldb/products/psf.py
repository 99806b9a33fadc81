"""PSF: the lobster-eye point spread function, separable and tabulated on (E, theta).

A micro-pore lobster-eye optic focuses a photon reflected once by each of its two
orthogonal wall sets into the central **spot**; a photon reflected by one set only is
focused along one axis and spread along the other: the two perpendicular **cross arms**;
a photon passing without reflection forms the diffuse **halo**.  The model is the
mixture, in DET pixels around the source's focal-plane position::

    D(dy, dz) = f_spot G(dy; s) G(dz; s)
              + f_army L(dy; g) G(dz; a) + f_armz G(dy; a) L(dz; g)
              + f_halo G(dy; h) G(dz; h)

with ``G`` a centred Gaussian, ``L`` a Cauchy (Lorentzian) profile of half-width ``g``
and fractions summing to 1, so the density integrates to 1 over the plane.  Every term
is a product of 1-D profiles: pixel integrals are exact outer products of CDF
differences, sampling is exact, and the detection's separable tables recover the
terms exactly.  The parameters are tabulated per (energy, off-axis angle) node and
interpolated bilinearly in (log E, theta), clamped at the grid ends (fractions stay
normalised: interpolation is linear).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import special

from mxt_pipeline.caldb.products._base import CalibrationModel, as_float, bilinear, grid_from_nodes
from mxt_pipeline.errors import MXTCalibrationError

__all__ = ["PSFModel", "PSF_PARAMETERS"]

#: Tabulated parameters (FITS column -> attribute key).
PSF_PARAMETERS = {
    "SPOT_SIG": "spot_sigma", "ARM_GAM": "arm_gamma", "ARM_SIG": "arm_sigma", "HALO_SIG": "halo_sigma",
    "F_SPOT": "f_spot", "F_ARMY": "f_arm_y", "F_ARMZ": "f_arm_z", "F_HALO": "f_halo",
}  # fmt: skip
_FRACTIONS = ("f_spot", "f_arm_y", "f_arm_z", "f_halo")
_WIDTHS = ("spot_sigma", "arm_gamma", "arm_sigma", "halo_sigma")
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
_SQRT2PI = np.sqrt(2.0 * np.pi)


def _gauss_pdf(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * (x / s) ** 2) / (s * _SQRT2PI)


def _gauss_cdf(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    return special.ndtr(x / s)


def _cauchy_pdf(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    return 1.0 / (np.pi * g * (1.0 + (x / g) ** 2))


def _cauchy_cdf(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    return 0.5 + np.arctan(x / g) / np.pi


class PSFModel(CalibrationModel):
    """The lobster-eye PSF (CALDB code name ``PSF``).

    Parameters
    ----------
    energy : array (nE,)
        Energy nodes (keV), increasing.
    theta : array (nT,)
        Off-axis angle nodes (arcmin), increasing.
    params : mapping
        ``spot_sigma``, ``arm_gamma``, ``arm_sigma``, ``halo_sigma`` (DET pixels) and
        ``f_spot``, ``f_arm_y``, ``f_arm_z``, ``f_halo``, each an ``(nE, nT)`` array.
    """

    CODE = "PSF"
    CONTENT = "CALDB_PSF"
    INDEXED = {"PSF": "PSF"}

    def __init__(self, energy: Any, theta: Any, params: Mapping[str, Any]) -> None:
        self.energy = as_float(energy).ravel()
        self.theta = as_float(theta).ravel()
        shape = (self.energy.size, self.theta.size)
        if np.any(self.energy <= 0) or np.any(np.diff(self.energy) <= 0):
            raise MXTCalibrationError("energy nodes must be positive and increasing", hdu="PSF", column="ENERGY")
        if np.any(self.theta < 0) or np.any(np.diff(self.theta) <= 0):
            raise MXTCalibrationError("off-axis nodes must be >= 0 and increasing", hdu="PSF", column="THETA")
        self.params: dict[str, np.ndarray] = {}
        for col, key in PSF_PARAMETERS.items():
            if key not in params:
                raise MXTCalibrationError(f"parameter {key} missing", hdu="PSF", column=col)
            arr = np.broadcast_to(as_float(params[key]), shape).copy()
            if not np.all(np.isfinite(arr)):
                raise MXTCalibrationError("non-finite values", hdu="PSF", column=col)
            if key in _WIDTHS and np.any(arr <= 0):
                raise MXTCalibrationError("widths must be positive", hdu="PSF", column=col)
            if key in _FRACTIONS and np.any(arr < 0):
                raise MXTCalibrationError("fractions must be >= 0", hdu="PSF", column=col)
            self.params[key] = arr
        total = sum(self.params[k] for k in _FRACTIONS)
        if np.any(np.abs(total - 1.0) > 1e-6):
            raise MXTCalibrationError(
                f"fractions sum to {float(np.max(np.abs(total - 1.0))) + 1:.6g}, not 1", hdu="PSF", column="F_SPOT"
            )
        self._log_e = np.log(self.energy)
        self._names = tuple(self.params)
        self._stacked = np.stack([np.asarray(self.params[k], float) for k in self._names], axis=-1)

    # ---- parameters -------------------------------------------------------------------------
    def parameters(self, energy: Any, theta: Any = 0.0) -> dict[str, np.ndarray]:
        """Interpolated parameters at (energy keV, theta arcmin), broadcast together."""
        le = np.log(np.maximum(as_float(energy), 1e-6))
        # One set of interpolation weights for all the parameters (stacked on a last axis).
        values = bilinear(self._log_e, self.theta, self._stacked, le, theta)
        return {k: values[..., n] for n, k in enumerate(self._names)}

    def fractions(self, energy: Any, theta: Any = 0.0) -> np.ndarray:
        """Fractions (spot, arm along DETY, arm along DETZ, halo), last axis of length 4."""
        p = self.parameters(energy, theta)
        return np.stack([p[k] for k in _FRACTIONS], axis=-1)

    def fwhm_spot(self, energy: Any, theta: Any = 0.0) -> np.ndarray | float:
        """FWHM of the central spot (DET pixels)."""
        s = self.parameters(energy, theta)["spot_sigma"] * _FWHM_PER_SIGMA
        return float(s) if s.ndim == 0 else s

    fwhm = fwhm_spot

    def _terms(self, p: Mapping[str, np.ndarray]):
        """(weight, profile along y, profile along z) of the four terms."""
        g = ("g", p["spot_sigma"])
        return (
            (p["f_spot"], g, g),
            (p["f_arm_y"], ("c", p["arm_gamma"]), ("g", p["arm_sigma"])),
            (p["f_arm_z"], ("g", p["arm_sigma"]), ("c", p["arm_gamma"])),
            (p["f_halo"], ("g", p["halo_sigma"]), ("g", p["halo_sigma"])),
        )

    # ---- evaluation -------------------------------------------------------------------------
    def density(self, dy: Any, dz: Any, energy: Any, theta: Any = 0.0) -> np.ndarray:
        """Probability per pixel^2 at offsets (dy, dz) DET pixels from the source.

        All arguments broadcast together.
        """
        dy = as_float(dy)
        dz = as_float(dz)
        p = self.parameters(energy, theta)
        pdf = {"g": _gauss_pdf, "c": _cauchy_pdf}
        out = 0.0
        for w, (ky, wy), (kz, wz) in self._terms(p):
            out = out + w * pdf[ky](dy, wy) * pdf[kz](dz, wz)
        return np.asarray(out, dtype=float)

    def pixel_fractions(self, y_edges: Any, z_edges: Any, y0: float, z0: float, energy: float,
                        theta: float = 0.0) -> np.ndarray:  # fmt: skip
        """Exact share of a source at (y0, z0) in each pixel of a grid.

        Parameters
        ----------
        y_edges, z_edges : array
            Pixel edges along DETY and DETZ (``ny + 1`` and ``nz + 1`` values).
        y0, z0 : float
            Source position in the same coordinates.
        energy, theta : float
            Energy (keV) and off-axis angle (arcmin).

        Returns
        -------
        ndarray (ny, nz)
        """
        yc = as_float(y_edges) - float(y0)
        zc = as_float(z_edges) - float(z0)
        p = self.parameters(float(energy), float(theta))
        cdf = {"g": _gauss_cdf, "c": _cauchy_cdf}
        out = np.zeros((yc.size - 1, zc.size - 1))
        for w, (ky, wy), (kz, wz) in self._terms(p):
            fy = np.diff(cdf[ky](yc, wy))
            fz = np.diff(cdf[kz](zc, wz))
            out += float(w) * np.outer(fy, fz)
        return out

    def sample(self, energy: Any, theta: Any, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Random PSF offsets (DETY, DETZ pixels), one per photon.

        Each photon picks a term by its fraction at its own (energy, theta), then each
        axis is drawn from the term's 1-D profile (Gaussian by normal deviates, Cauchy by
        the inverse CDF).
        """
        energy, theta = np.broadcast_arrays(as_float(energy), as_float(theta))
        energy = energy.ravel()
        theta = theta.ravel()
        n = energy.size
        p = self.parameters(energy, theta)
        c1 = p["f_spot"]
        c2 = c1 + p["f_arm_y"]
        c3 = c2 + p["f_arm_z"]
        u = rng.random(n)
        comp = (u >= c1).astype(np.int8) + (u >= c2) + (u >= c3)
        gy = rng.standard_normal(n)
        gz = rng.standard_normal(n)
        cauchy = np.tan(np.pi * (rng.random(n) - 0.5))
        sig_y = np.choose(comp, (p["spot_sigma"], p["arm_sigma"], p["arm_sigma"], p["halo_sigma"]))
        sig_z = np.choose(comp, (p["spot_sigma"], p["arm_sigma"], p["arm_sigma"], p["halo_sigma"]))
        dy = gy * sig_y
        dz = gz * sig_z
        arm_y = comp == 1
        arm_z = comp == 2
        dy[arm_y] = cauchy[arm_y] * p["arm_gamma"][arm_y]
        dz[arm_z] = cauchy[arm_z] * p["arm_gamma"][arm_z]
        return dy, dz

    def encircled_fraction(self, radius: Any, energy: float, theta: float = 0.0, n: int = 512) -> np.ndarray:
        """Fraction within ``radius`` pixels (numerical, polar midpoint rule)."""
        radius = np.atleast_1d(as_float(radius))
        out = np.empty(radius.size)
        phi = (np.arange(n) + 0.5) * 2 * np.pi / n
        for i, rmax in enumerate(radius):
            r = (np.arange(n) + 0.5) * rmax / n
            rr, pp = np.meshgrid(r, phi, indexing="ij")
            d = self.density(rr * np.cos(pp), rr * np.sin(pp), energy, theta)
            out[i] = float(np.sum(d * rr) * (rmax / n) * (2 * np.pi / n))
        return out

    # ---- tables -----------------------------------------------------------------------------
    def to_tables(self) -> dict[str, dict[str, np.ndarray]]:
        ee, tt = np.meshgrid(self.energy, self.theta, indexing="ij")
        cols = {"ENERGY": ee.ravel(), "THETA": tt.ravel()}
        for col, key in PSF_PARAMETERS.items():
            cols[col] = self.params[key].ravel()
        return {"PSF": cols}

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], headers: Mapping[str, Any]) -> PSFModel:
        t = tables["PSF"]
        cols = list(PSF_PARAMETERS)
        e, th, grids = grid_from_nodes(
            as_float(t["ENERGY"]), as_float(t["THETA"]), [as_float(t[c]) for c in cols], hdu="PSF", names=["ENERGY"]
        )
        return cls(e, th, {PSF_PARAMETERS[c]: g for c, g in zip(cols, grids)})
