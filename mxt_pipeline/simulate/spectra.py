"""Photon spectra of simulated sources: absorbed power law, absorbed blackbody, lines.

Every spectrum is a photon spectrum ``N(E)`` in photons cm^-2 s^-1 keV^-1 whose
*shape* is given by the model parameters; the normalisation comes from the source's
energy flux (erg cm^-2 s^-1 in the reference band 0.3-10 keV, see
:func:`normalisation_for_flux`).  Spectra are small frozen dataclasses with a
``to_dict``/``spectrum_from_dict`` round trip, so that the scenario file and
``truth.json`` hold them verbatim.

Photoelectric absorption
------------------------
Interstellar absorption uses the effective cross-section per hydrogen atom of
Morrison & McCammon (1983, ApJ 270, 119, "Interstellar photoelectric absorption cross
sections, 0.03-10 keV"), their Table 2: on 14 energy intervals

    sigma(E) = (c0 + c1 E + c2 E^2) E^-3 x 1e-24 cm^2      (E in keV)

for gas and grains of solar abundances (Anders & Ebihara 1982).  The transmission of a
column ``N_H`` (in units of 1e22 cm^-2, as in XSPEC ``wabs``) is
``exp(-N_H 1e22 sigma(E))``.  Above 10 keV, where the published fit ends, the last
interval's polynomial is extrapolated (the absorption there is negligible for any
Galactic column); below 0.03 keV the first interval's is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from mxt_pipeline.errors import MXTInputError

__all__ = [
    "MM83_EDGES_KEV",
    "MM83_COEFFS",
    "KEV_TO_ERG",
    "FLUX_BAND_KEV",
    "mm83_cross_section",
    "transmission",
    "Spectrum",
    "PowerLaw",
    "Blackbody",
    "GaussianLine",
    "spectrum_from_dict",
    "energy_flux",
    "photon_flux",
    "normalisation_for_flux",
]

#: 1 keV in erg.
KEV_TO_ERG = 1.602176634e-9

#: Band (keV) in which source fluxes are quoted (the Swift-XRT convention of the
#: light-curve repository and of the MXT alerts).
FLUX_BAND_KEV = (0.3, 10.0)

#: Interval boundaries (keV) of Morrison & McCammon (1983), Table 2.
MM83_EDGES_KEV = np.array(
    [0.030, 0.100, 0.284, 0.400, 0.532, 0.707, 0.867, 1.303, 1.840, 2.471, 3.210, 4.038, 7.111, 8.331, 10.000]
)

#: Polynomial coefficients (c0, c1, c2) of each interval, Morrison & McCammon (1983),
#: Table 2; sigma E^3 = c0 + c1 E + c2 E^2 in units of 1e-24 cm^2 keV^3.
MM83_COEFFS = np.array(
    [
        [17.3, 608.1, -2150.0],  # 0.030-0.100 keV
        [34.6, 267.9, -476.1],  # 0.100-0.284 (C K edge at 0.284)
        [78.1, 18.8, 4.3],  # 0.284-0.400 (N K edge at 0.400)
        [71.4, 66.8, -51.4],  # 0.400-0.532 (O K edge at 0.532)
        [95.5, 145.8, -61.1],  # 0.532-0.707 (Fe L edge at 0.707)
        [308.9, -380.6, 294.0],  # 0.707-0.867 (Ne K edge at 0.867)
        [120.6, 169.3, -47.7],  # 0.867-1.303 (Mg K edge at 1.303)
        [141.3, 146.8, -31.5],  # 1.303-1.840 (Si K edge at 1.840)
        [202.7, 104.7, -17.0],  # 1.840-2.471 (S K edge at 2.471)
        [342.7, 18.7, 0.0],  # 2.471-3.210 (Ar K edge at 3.210)
        [352.2, 18.7, 0.0],  # 3.210-4.038 (Ca K edge at 4.038)
        [433.9, -2.4, 0.75],  # 4.038-7.111 (Fe K edge at 7.111)
        [629.0, 30.9, 0.0],  # 7.111-8.331 (Ni K edge at 8.331)
        [701.2, 25.2, 0.0],  # 8.331-10.000
    ]
)


def mm83_cross_section(energy_kev: np.ndarray | float) -> np.ndarray:
    """Photoelectric cross-section per H atom (cm^2), Morrison & McCammon (1983).

    Parameters
    ----------
    energy_kev : array_like
        Photon energies (keV), positive.

    Returns
    -------
    ndarray
        ``sigma(E)`` in cm^2, same shape as the input.  The interval containing ``E``
        is the one with ``edge[k] <= E < edge[k+1]``, so an absorption edge belongs to
        the interval above it (the cross-section jumps up at the edge energy).
    """
    e = np.asarray(energy_kev, dtype=float)
    if np.any(~(e > 0)):
        raise MXTInputError("photon energies must be positive for the absorption cross-section")
    k = np.clip(np.searchsorted(MM83_EDGES_KEV, e, side="right") - 1, 0, len(MM83_COEFFS) - 1)
    c = MM83_COEFFS[k]
    return (c[..., 0] + c[..., 1] * e + c[..., 2] * e * e) / (e * e * e) * 1e-24


def transmission(energy_kev: np.ndarray | float, nh_1e22: float) -> np.ndarray:
    """Fraction of photons transmitted through a hydrogen column ``nh_1e22`` x 1e22 cm^-2."""
    if nh_1e22 < 0 or not math.isfinite(nh_1e22):
        raise MXTInputError(f"hydrogen column must be finite and >= 0, got {nh_1e22}")
    if nh_1e22 == 0:
        return np.ones_like(np.asarray(energy_kev, dtype=float))
    return np.exp(-nh_1e22 * 1e22 * mm83_cross_section(energy_kev))


# ---- spectral models ------------------------------------------------------------------


@dataclass(frozen=True)
class Spectrum:
    """Base class: a photon spectrum shape, absorbed by a column ``nh`` (1e22 cm^-2).

    Subclasses implement :meth:`unabsorbed` (photons cm^-2 s^-1 keV^-1 for unit
    normalisation); :meth:`shape` applies the absorption.
    """

    MODEL: ClassVar[str] = ""

    def unabsorbed(self, energy_kev: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def shape(self, energy_kev: np.ndarray | float) -> np.ndarray:
        """Absorbed photon spectrum for unit normalisation (photons cm^-2 s^-1 keV^-1)."""
        e = np.asarray(energy_kev, dtype=float)
        return self.unabsorbed(e) * transmission(e, self.nh)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict ``{"model": ..., parameters...}`` (scenario files, truth.json)."""
        return {"model": self.MODEL, **asdict(self)}


@dataclass(frozen=True)
class PowerLaw(Spectrum):
    """Absorbed power law ``N(E) = E^-index`` (normalisation 1 photon cm^-2 s^-1 keV^-1 at 1 keV).

    GRB X-ray afterglows have photon indices about 2 (Nousek et al. 2006).
    """

    index: float = 2.0
    nh: float = 0.0
    MODEL: ClassVar[str] = "powerlaw"

    def __post_init__(self) -> None:
        _check_finite(self, index=self.index, nh=self.nh)
        if self.nh < 0:
            raise MXTInputError(f"powerlaw: nh must be >= 0, got {self.nh}", keyword="nh")

    def unabsorbed(self, energy_kev: np.ndarray) -> np.ndarray:
        return np.power(energy_kev, -self.index)


@dataclass(frozen=True)
class Blackbody(Spectrum):
    """Absorbed blackbody photon spectrum ``N(E) = E^2 / (exp(E / kT) - 1)`` (Planck law, photons).

    The normalisation of this shape is arbitrary (set later from the energy flux).
    """

    kt: float = 0.5
    nh: float = 0.0
    MODEL: ClassVar[str] = "blackbody"

    def __post_init__(self) -> None:
        _check_finite(self, kt=self.kt, nh=self.nh)
        if self.kt <= 0:
            raise MXTInputError(f"blackbody: kt must be > 0 keV, got {self.kt}", keyword="kt")
        if self.nh < 0:
            raise MXTInputError(f"blackbody: nh must be >= 0, got {self.nh}", keyword="nh")

    def unabsorbed(self, energy_kev: np.ndarray) -> np.ndarray:
        x = np.asarray(energy_kev, dtype=float) / self.kt
        # expm1 keeps full precision for E << kT; exp overflow for E >> kT gives 0.
        with np.errstate(over="ignore"):
            return np.asarray(energy_kev, dtype=float) ** 2 / np.expm1(np.minimum(x, 700.0))


@dataclass(frozen=True)
class GaussianLine(Spectrum):
    """Gaussian emission line of centre ``energy`` and width ``sigma`` (keV), unit area.

    Used for calibration sources on the detector (e.g. Al K-alpha 1.487 keV,
    Mn K-alpha 5.895 keV); ``sigma = 0`` gives a mono-energetic line (sampled exactly).
    """

    energy: float = 1.487
    sigma: float = 0.0
    nh: float = 0.0
    MODEL: ClassVar[str] = "line"

    def __post_init__(self) -> None:
        _check_finite(self, energy=self.energy, sigma=self.sigma, nh=self.nh)
        if self.energy <= 0 or self.sigma < 0:
            raise MXTInputError("line: energy must be > 0 and sigma >= 0 keV", keyword="energy")

    def unabsorbed(self, energy_kev: np.ndarray) -> np.ndarray:
        e = np.asarray(energy_kev, dtype=float)
        if self.sigma == 0:
            return np.zeros_like(e)
        z = (e - self.energy) / self.sigma
        return np.exp(-0.5 * z * z) / (self.sigma * math.sqrt(2 * math.pi))


_MODELS: dict[str, type[Spectrum]] = {cls.MODEL: cls for cls in (PowerLaw, Blackbody, GaussianLine)}


def _check_finite(obj: Spectrum, **values: float) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise MXTInputError(f"{obj.MODEL}: parameter {name} must be a finite number, got {v!r}", keyword=name)


def spectrum_from_dict(d: Mapping[str, Any]) -> Spectrum:
    """Build a spectrum from ``{"model": "powerlaw"|"blackbody"|"line", parameters...}``.

    Raises
    ------
    MXTInputError
        Unknown model or parameter, or a parameter out of range (named in the message).
    """
    if not isinstance(d, Mapping) or "model" not in d:
        raise MXTInputError("a spectrum needs a 'model' key", keyword="model")
    model = str(d["model"]).lower()
    cls = _MODELS.get(model)
    if cls is None:
        raise MXTInputError(f"unknown spectral model {model!r}; known: {sorted(_MODELS)}", keyword="model")
    params = {k: v for k, v in d.items() if k != "model"}
    allowed = set(cls.__dataclass_fields__)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise MXTInputError(f"{model}: unknown parameter(s) {unknown}; allowed: {sorted(allowed)}", keyword=unknown[0])
    try:
        params = {k: float(v) for k, v in params.items()}
    except (TypeError, ValueError):
        raise MXTInputError(f"{model}: parameters must be numbers: {params}", keyword="model") from None
    return cls(**params)


# ---- band integrals ------------------------------------------------------------------


def _band_grid(e_lo: float, e_hi: float, spectrum: Spectrum, n: int = 4000) -> np.ndarray:
    """Integration nodes on [e_lo, e_hi]: log-uniform plus both sides of every edge."""
    if not (0 < e_lo < e_hi):
        raise MXTInputError(f"bad energy band [{e_lo}, {e_hi}] keV")
    grid = np.geomspace(e_lo, e_hi, n)
    edges = MM83_EDGES_KEV[(MM83_EDGES_KEV > e_lo) & (MM83_EDGES_KEV < e_hi)]
    extra = [edges * (1 - 1e-9), edges]
    if isinstance(spectrum, GaussianLine) and spectrum.sigma > 0:
        extra.append(spectrum.energy + spectrum.sigma * np.linspace(-8, 8, 161))
    grid = np.unique(np.concatenate([grid, *extra]))
    return grid[(grid >= e_lo) & (grid <= e_hi)]


def photon_flux(spectrum: Spectrum, band: tuple[float, float] = FLUX_BAND_KEV) -> float:
    """Photons cm^-2 s^-1 in ``band`` (keV) for unit normalisation of ``spectrum``."""
    lo, hi = band
    if isinstance(spectrum, GaussianLine) and spectrum.sigma == 0:
        return float(transmission(spectrum.energy, spectrum.nh)) if lo <= spectrum.energy < hi else 0.0
    e = _band_grid(lo, hi, spectrum)
    return float(np.trapezoid(spectrum.shape(e), e))


def energy_flux(spectrum: Spectrum, band: tuple[float, float] = FLUX_BAND_KEV) -> float:
    """Energy flux (erg cm^-2 s^-1) in ``band`` (keV) for unit normalisation of ``spectrum``."""
    lo, hi = band
    if isinstance(spectrum, GaussianLine) and spectrum.sigma == 0:
        inside = lo <= spectrum.energy < hi
        return float(spectrum.energy * transmission(spectrum.energy, spectrum.nh)) * KEV_TO_ERG if inside else 0.0
    e = _band_grid(lo, hi, spectrum)
    return float(np.trapezoid(e * spectrum.shape(e), e)) * KEV_TO_ERG


def normalisation_for_flux(spectrum: Spectrum, flux_cgs: float, band: tuple[float, float] = FLUX_BAND_KEV) -> float:
    """Normalisation ``K`` such that ``K * spectrum.shape`` carries ``flux_cgs`` erg cm^-2 s^-1 in ``band``.

    The flux is the *observed* (absorbed) flux, as the Swift-XRT count-rate-to-flux
    factor of the light-curve repository gives it.
    """
    if flux_cgs < 0 or not math.isfinite(flux_cgs):
        raise MXTInputError(f"flux must be finite and >= 0 erg/cm2/s, got {flux_cgs}", keyword="flux")
    unit = energy_flux(spectrum, band)
    if unit <= 0:
        raise MXTInputError(f"the {spectrum.MODEL} spectrum carries no flux in {band} keV", keyword="spectrum")
    return flux_cgs / unit
