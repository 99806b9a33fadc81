"""Per-source extraction from L2 events: source circle, background annulus, corrections.

For each source of the source list (MXT-SOP-SKY) the events are selected, then split
into a source circle and a background annulus around the source's sky position (X, Y
sky pixels of the L2 tangent plane), and binned into a light curve
(:mod:`mxt_pipeline.lightcurve.rates`).

Modelling assumptions
---------------------
* **Event selection**: energy in ``[e_min, e_max)`` keV (default the MXT band,
  0.2-10 keV, Goetz et al. 2022), imaging patterns 0-12 (EPIC-pn convention: 13 is
  invalid), and no STATUS bit of ``status_mask`` set (default: bad or hot pixel,
  invalid pattern, out of band, pile-up; events merely touching the border or a bad
  pixel's neighbour are valid photons and kept), inside the GTIs.
* **Source radius**: the radius enclosing ``fraction`` of the PSF, from an encircled-
  energy function ``eef(r_pixels) -> fraction`` or a CALDB PSF model (its surface
  density integrated on a polar grid, cross arms and halo included, at
  ``DEFAULT_EEF_ENERGY_KEV`` on axis), or given in pixels.  Without a PSF the PSF of
  the CALDB in use (``$CALDB`` or the bundled synthetic set) is taken, and
  ``fraction = 0.5`` (the central spot of the lobster-eye PSF).
* **PSF correction**: the rates are divided by the PSF fraction inside the circle.
  The lobster-eye spot holds less of the flux at high energy (the arms more), so with
  a ``fraction_of_energy`` in the region (:func:`fraction_vs_energy`, the bricks'
  default) each source's fraction follows its own spectrum: the net counts in the
  circle over the sum of 1/f(E) of its events, background removed
  (:func:`spectral_psf_fraction`), written as PSFFRAC.  At one energy (1.5 keV) the
  rates of a hard source (mean energy ~4 keV) were 26-35 % low.
* **Background**: an annulus ``[inner, outer)`` (default 3 and 5 source radii) from
  which are removed circles around the other sources (``exclusion`` source radii) and,
  for the lobster-eye cross arms of the source itself, strips along the detector axes
  through the source (half width one source radius).  The detector axes in sky pixels
  and the chip footprint come from an affine fit of (RAWY, RAWZ) against (X, Y) over all
  events (exact for a fixed pointing; an average under attitude drift).
* **Areas**: integrated on a polar grid centred on the source (midpoint rule, steps
  of 0.25 pixel in radius and at most 0.5 pixel along arcs, coarser for regions over
  100 pixels wide or 160 pixels in radius), counting only points on the chip (RAW
  within [-0.5, 255.5)).  The midpoint rule is exact for ``r dr``, so a circle or
  annulus wholly on the chip gets its geometric area to rounding; the cuts (other
  sources, cross arms, chip edges) are resolved to a fraction of a pixel along their
  boundary (measured: areas within 3e-4 of their closed forms, 0.04 s per source).
  ``area_ratio`` is source area over background area.  The source area lost
  off the chip is reported (``SRCAREAF``) but not corrected.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.table import Table
from scipy.optimize import brentq

from mxt_pipeline import constants as C
from mxt_pipeline.datamodel import GTI, EventList, GapList
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.lightcurve import binning
from mxt_pipeline.lightcurve.rates import LightCurve, light_curve

__all__ = [
    "DEFAULT_EEF_FRACTION",
    "DEFAULT_EEF_ENERGY_KEV",
    "density_eef",
    "fraction_vs_energy",
    "spectral_psf_fraction",
    "EEF_ENERGY_GRID_KEV",
    "psf_eef",
    "DEFAULT_STATUS_MASK",
    "SourceRegion",
    "SourceEvents",
    "gaussian_spot_eef",
    "source_region",
    "select_events",
    "sky_to_raw",
    "source_events",
    "extract_light_curves",
]

#: Fraction of the PSF inside the default source circle.  Half of a lobster-eye PSF
#: lies in its central spot (radius about 35 pixels at 1.5 keV for MXT); the rest is
#: spread along the cross arms and the halo, so a larger fraction would need a circle
#: of 90 pixels or more and drown faint sources in background.
DEFAULT_EEF_FRACTION = 0.5
#: Energy (keV) at which a CALDB PSF model is turned into an encircled fraction: the
#: middle of the MXT band in counts (effective-area peak, Goetz et al. 2022).
DEFAULT_EEF_ENERGY_KEV = 1.5
#: STATUS bits that reject an event: BADPIX | HOTPIX | INVALID_PATTERN | OUT_OF_BAND | PILEUP.
DEFAULT_STATUS_MASK = 1 | 2 | 16 | 32 | 64
#: Largest imaging pattern code (0 single ... 12 quadruple).
MAX_IMAGING_PATTERN = 12
#: Radial step and largest arc step (sky pixels) of the polar area grid.
_AREA_DR = 0.25
_AREA_ARC = 0.5
#: Bounds on the polar grid (memory and time of one source's areas).
_AREA_MAX_RINGS = 400
_AREA_MAX_SPOKES = 2048

EEF = Callable[[float], float]


def gaussian_spot_eef(fwhm_pix: float) -> EEF:
    """Encircled fraction ``1 - exp(-r^2 / (2 sigma^2))`` of a circular Gaussian spot."""
    sigma = fwhm_pix / (2.0 * np.sqrt(2.0 * np.log(2.0)))

    def eef(r: float) -> float:
        return float(-np.expm1(-0.5 * (r / sigma) ** 2))

    return eef


#: Polar grid on which a PSF density is integrated: steps of 0.05 pixel within 32
#: pixels, of 1 pixel out to 256 (the chip seen from any point); 720 azimuths sample
#: the cross arms of the lobster-eye PSF every 0.5 deg.
_EEF_EXTENT_PIX = 256.0
_EEF_CORE_PIX = 32.0
_EEF_FINE_STEP = 0.05
_EEF_N_PHI = 720


def density_eef(density: Callable[..., Any], energy_kev: float = DEFAULT_EEF_ENERGY_KEV,
                theta_arcmin: float = 0.0) -> EEF:
    """Encircled fraction of a PSF surface density ``density(dy, dz, energy, theta)``.

    The density (per pixel^2, normalised to 1 over the whole focal plane as a CALDB PSF
    is) is averaged over rings and integrated in radius by the trapezoid rule out to
    256 pixels.  The fraction is absolute: the cross arms and halo beyond a radius
    count as lost, as they are for the source's flux.

    Parameters
    ----------
    density : callable
        ``density(dy, dz, energy_kev, theta_arcmin)`` of a CALDB ``PSFModel``.
    energy_kev, theta_arcmin : float
        Energy and off-axis angle of the evaluation.

    Returns
    -------
    callable
        ``eef(r_pixels) -> fraction``, non-decreasing from 0 to 1.
    """
    radii = np.unique(np.r_[np.linspace(0.0, _EEF_CORE_PIX, int(_EEF_CORE_PIX / _EEF_FINE_STEP) + 1),
                            np.linspace(_EEF_CORE_PIX, _EEF_EXTENT_PIX, int(_EEF_EXTENT_PIX - _EEF_CORE_PIX) + 1)])  # fmt: skip
    phi = (np.arange(_EEF_N_PHI) + 0.5) * (2.0 * np.pi / _EEF_N_PHI)
    dy = radii[:, None] * np.cos(phi)[None, :]
    dz = radii[:, None] * np.sin(phi)[None, :]
    dens = np.asarray(density(dy.ravel(), dz.ravel(), energy_kev, theta_arcmin), float).reshape(dy.shape)
    ring = radii * dens.mean(axis=1) * 2.0 * np.pi
    cum = np.r_[0.0, np.cumsum(0.5 * (ring[1:] + ring[:-1]) * np.diff(radii))]
    if not np.isfinite(cum[-1]) or not 0.0 < cum[-1] <= 1.0 + 1e-3:
        raise MXTInputError(
            f"the PSF density integrates to {cum[-1]:.4g} within {_EEF_EXTENT_PIX:.0f} pixels: "
            "it must be a probability density normalised over the focal plane"
        )
    cum = np.minimum(cum, 1.0)

    def eef(radius: float) -> float:
        return float(np.interp(radius, radii, cum, left=0.0, right=cum[-1]))

    return eef


@functools.lru_cache(maxsize=4)
def _caldb_eef(root: str | None) -> EEF:
    from mxt_pipeline.caldb.products import CalibrationSet

    psf = CalibrationSet.from_caldb(root, codes=("PSF",)).psf
    return density_eef(psf.density)


def _default_eef() -> EEF:
    """The encircled fraction of the PSF of the CALDB in use (``$CALDB`` or bundled)."""
    return _caldb_eef(os.environ.get("CALDB") or None)


def psf_eef(psf: Any, energy_kev: float = DEFAULT_EEF_ENERGY_KEV, theta_arcmin: float = 0.0) -> EEF:
    """Encircled fraction ``eef(r_pixels)`` of any accepted PSF description.

    Parameters
    ----------
    psf : None, CALDB PSF model, object with ``encircled_fraction`` or callable
        None: the PSF of the CALDB in use.  A model with a surface density
        ``density(dy, dz, energy, theta)`` is integrated (:func:`density_eef`); else its
        ``encircled_fraction(r[, energy, theta])``; else ``psf`` is ``eef`` itself.
    energy_kev, theta_arcmin : float
        Energy and off-axis angle at which a model is evaluated.

    Returns
    -------
    callable
    """
    if psf is None:
        return _default_eef()
    density = getattr(psf, "density", None)
    if callable(density):  # a CALDB PSF model
        return density_eef(density, energy_kev, theta_arcmin)
    method = getattr(psf, "encircled_fraction", None)
    if callable(method):

        def eef(r: float) -> float:
            try:
                return float(np.ravel(method(r, energy_kev, theta_arcmin))[0])
            except TypeError:  # eef(r) alone
                return float(np.ravel(method(r))[0])

        return eef
    if callable(psf):
        return psf
    raise MXTInputError(
        "psf must be a callable eef(r_pixels), a CALDB PSF model or have encircled_fraction(r_pixels)"
    )


@dataclass(frozen=True)
class SourceRegion:
    """Source circle and background annulus (sky pixels) with the PSF fraction inside."""

    radius: float
    psf_fraction: float
    bkg_inner: float
    bkg_outer: float
    exclusion: float = 1.5
    exclude_arms: bool = True
    #: ``f(energy_kev) -> fraction`` inside ``radius`` (:func:`fraction_vs_energy`): when
    #: given, each source's PSF correction follows its own spectrum
    #: (:func:`spectral_psf_fraction`) instead of ``psf_fraction``, the fraction at one energy.
    fraction_of_energy: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.radius > 0 and 0 < self.psf_fraction <= 1):
            raise MXTInputError("the source radius must be > 0 and its PSF fraction in (0, 1]")
        if not (self.radius <= self.bkg_inner < self.bkg_outer):
            raise MXTInputError("the background annulus must lie outside the source circle")


def source_region(
    psf: Any = None,
    *,
    fraction: float = DEFAULT_EEF_FRACTION,
    radius: float | None = None,
    psf_fraction: float | None = None,
    bkg_inner: float = 3.0,
    bkg_outer: float = 5.0,
    exclusion: float = 1.5,
    exclude_arms: bool = True,
) -> SourceRegion:
    """Size the source region from the PSF.

    Parameters
    ----------
    psf : callable or object, optional
        Encircled fraction ``eef(r_pixels)`` (or an object with
        ``encircled_fraction``) or a CALDB PSF model; default the PSF of the CALDB in
        use (module docs).
    fraction : float
        PSF fraction the circle should enclose (used when ``radius`` is not given).
    radius : float, optional
        Source radius in sky pixels; overrides ``fraction``.
    psf_fraction : float, optional
        PSF fraction inside ``radius`` when known; default ``eef(radius)``.
    bkg_inner, bkg_outer : float
        Background annulus, in units of the source radius.
    exclusion : float
        Radius of the circles cut around other sources, in source radii.
    exclude_arms : bool
        Cut the source's cross arms out of the annulus.

    Returns
    -------
    SourceRegion
    """
    eef = psf_eef(psf)
    if radius is None:
        if not 0.0 < fraction < 1.0:
            raise MXTInputError(f"fraction must lie in (0, 1), got {fraction}")
        hi = 1.0
        while eef(hi) < fraction:
            hi *= 2.0
            if hi > 1e5:
                raise MXTInputError(f"the PSF never encloses a fraction {fraction}")
        radius = brentq(lambda r: eef(r) - fraction, 0.0, hi, xtol=1e-6)
    if psf_fraction is None:
        psf_fraction = float(eef(radius))
    return SourceRegion(
        radius=float(radius),
        psf_fraction=float(psf_fraction),
        bkg_inner=bkg_inner * float(radius),
        bkg_outer=bkg_outer * float(radius),
        exclusion=exclusion,
        exclude_arms=exclude_arms,
    )


def _column(table: Table, name: str, what: str) -> np.ndarray:
    if name not in table.colnames:
        raise MXTInputError(f"{what} lacks column {name}", column=name)
    return np.asarray(table[name])


def select_events(
    table: Table,
    gti: GTI,
    *,
    e_min: float = C.ENERGY_MIN_KEV,
    e_max: float = C.ENERGY_MAX_KEV,
    status_mask: int = DEFAULT_STATUS_MASK,
    max_pattern: int = MAX_IMAGING_PATTERN,
) -> np.ndarray:
    """Boolean mask of the events usable for light curves (see the module docs)."""
    energy = _column(table, "ENERGY", "event list").astype(float)
    ok = (energy >= e_min) & (energy < e_max)
    if "PATTERN" in table.colnames:
        ok &= np.asarray(table["PATTERN"]) <= max_pattern
    if "STATUS" in table.colnames:
        ok &= (np.asarray(table["STATUS"]).astype(np.int64) & int(status_mask)) == 0
    ok &= gti.contains(_column(table, "TIME", "event list").astype(float))
    return ok


def sky_to_raw(table: Table) -> np.ndarray:
    """Affine map (3 x 2) from sky (X, Y, 1) to (RAWY, RAWZ), least squares over events.

    Returns None-equivalent identity-free fits only when the events constrain it; with
    fewer than 3 events or a degenerate spread an :class:`MXTInputError` is raised.
    """
    x = _column(table, "X", "event list").astype(float)
    y = _column(table, "Y", "event list").astype(float)
    ry = _column(table, "RAWY", "event list").astype(float)
    rz = _column(table, "RAWZ", "event list").astype(float)
    design = np.column_stack([x, y, np.ones_like(x)])
    if x.size < 3 or np.linalg.matrix_rank(design) < 3:
        raise MXTInputError("too few events to relate sky and detector coordinates")
    coef, *_ = np.linalg.lstsq(design, np.column_stack([ry, rz]), rcond=None)
    return coef


def _polar_grid(
    x0: float, y0: float, r_in: float, r_out: float, dr: float = _AREA_DR, arc: float = _AREA_ARC
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Midpoints ``(x, y)`` and areas of a polar grid of the annulus ``[r_in, r_out)``.

    The weights sum to ``pi (r_out^2 - r_in^2)`` to rounding (midpoint rule in radius,
    exact for the integrand ``r``; uniform in angle).
    """
    # At most _AREA_MAX_RINGS x _AREA_MAX_SPOKES points: large regions get coarser steps
    # (their circles and annuli stay exact; only the cuts are resolved more coarsely).
    nr = min(_AREA_MAX_RINGS, max(1, int(np.ceil((r_out - r_in) / dr))))
    n_theta = min(_AREA_MAX_SPOKES, max(16, int(np.ceil(2.0 * np.pi * r_out / arc))))
    edges = np.linspace(r_in, r_out, nr + 1)
    r = 0.5 * (edges[1:] + edges[:-1])
    theta = (np.arange(n_theta) + 0.5) * (2.0 * np.pi / n_theta)
    w = np.repeat(r * np.diff(edges) * (2.0 * np.pi / n_theta), n_theta)
    rr = np.repeat(r, n_theta)
    tt = np.tile(theta, nr)
    return x0 + rr * np.cos(tt), y0 + rr * np.sin(tt), w


#: Energies (keV) at which the PSF fraction of the source circle is tabulated for the
#: spectral correction; interpolated linearly in log E between them.  The lobster-eye
#: spot shrinks with energy against the arms (for the bundled CALDB, in a 34-pixel
#: circle: 0.54 at 0.5 keV, 0.50 at 1.5, 0.37 at 4, 0.20 at 7 keV), smoothly in log E.
EEF_ENERGY_GRID_KEV = np.geomspace(0.3, 10.0, 9)


def fraction_vs_energy(psf: Any, radius: float, theta_arcmin: float = 0.0,
                       energies: np.ndarray = EEF_ENERGY_GRID_KEV) -> Callable[[np.ndarray], np.ndarray]:  # fmt: skip
    """``f(energy_kev)``: the PSF fraction inside ``radius`` (pixels) at each energy.

    Parameters
    ----------
    psf : any
        A PSF description accepted by :func:`psf_eef` (one without an energy dependence
        gives a constant).
    radius : float
        Source-circle radius (pixels).
    theta_arcmin : float
        Off-axis angle of the evaluation.
    energies : ndarray
        Tabulation grid (keV); energies outside it take the value at its end.

    Returns
    -------
    callable
        Vectorised ``f(energy_kev) -> fraction`` in (0, 1].
    """
    grid = np.asarray(energies, dtype=float)
    table = _fraction_table(psf, float(radius), float(theta_arcmin), tuple(grid.tolist()))
    log_grid = np.log(grid)

    def f(energy_kev: np.ndarray) -> np.ndarray:
        e = np.clip(np.asarray(energy_kev, dtype=float), grid[0], grid[-1])
        return np.interp(np.log(e), log_grid, table)

    return f


@functools.lru_cache(maxsize=8)
def _fraction_table(psf: Any, radius: float, theta_arcmin: float, energies: tuple[float, ...]) -> np.ndarray:
    """PSF fraction inside ``radius`` at each energy; cached per PSF model, for it costs
    one surface integral per energy (~30 ms each) and a campaign worker or a golden
    replay keeps the same CALDB models from run to run."""
    table = np.array([psf_eef(psf, e, theta_arcmin)(radius) for e in energies])
    if not np.all((table > 0.0) & (table <= 1.0 + 1e-9)):
        raise MXTInputError(f"PSF fraction inside {radius:.3g} pixels outside (0, 1] at some energy: {table}")
    table.setflags(write=False)
    return table


def spectral_psf_fraction(fraction_of_energy: Callable[[np.ndarray], np.ndarray], src_energy: np.ndarray,
                          bkg_energy: np.ndarray, area_ratio: float, e_min: float, e_max: float,
                          default: float) -> float:  # fmt: skip
    """PSF fraction of one source inside its circle, for its own spectrum.

    A source photon of energy E falls in the circle with probability f(E); each event
    in the circle stands for 1/f(E) photons of the whole PSF (Horvitz-Thompson), and
    the background's share is removed as the rates remove it.  The fraction is the net
    counts in the circle over the net whole-PSF counts:

    ``(N_src - a N_bkg) / (sum_src 1/f(E) - a sum_bkg 1/f(E))``,

    bounded by the extremes of f over the band.  Without a positive net signal the
    spectrum cannot be measured and ``default`` (the fraction at one energy) is returned.

    Parameters
    ----------
    fraction_of_energy : callable
        :func:`fraction_vs_energy` of the source circle.
    src_energy, bkg_energy : ndarray
        Energies (keV) of the events in the circle and in the background region.
    area_ratio : float
        Circle area over background area.
    e_min, e_max : float
        Energy band of the light curve.
    default : float
        Fraction used when the net signal is not positive.
    """
    src = np.asarray(src_energy, dtype=float)
    bkg = np.asarray(bkg_energy, dtype=float)
    net = src.size - area_ratio * bkg.size
    whole = float(np.sum(1.0 / fraction_of_energy(src))) - area_ratio * float(np.sum(1.0 / fraction_of_energy(bkg)))
    if not (net > 0.0 and whole > 0.0):
        return float(default)
    band = fraction_of_energy(np.geomspace(max(e_min, 1e-3), max(e_max, 2e-3), 64))
    return float(np.clip(net / whole, band.min(), band.max()))


@dataclass
class SourceEvents:
    """The events of one source's regions and the region areas."""

    src_id: int
    ra: float
    dec: float
    x: float
    y: float
    region: SourceRegion
    src_times: np.ndarray
    bkg_times: np.ndarray
    src_area: float
    bkg_area: float
    src_area_fraction: float
    meta: dict[str, Any] = field(default_factory=dict)
    #: Energies (keV) of the events in the circle and in the annulus, in the order of
    #: ``src_times`` and ``bkg_times`` (None when the events have no ENERGY column).
    src_energy: np.ndarray | None = None
    bkg_energy: np.ndarray | None = None

    @property
    def area_ratio(self) -> float:
        """Source area over background area (0 when there is no background area)."""
        return self.src_area / self.bkg_area if self.bkg_area > 0 else 0.0


def _region_masks(
    px: np.ndarray,
    py: np.ndarray,
    x0: float,
    y0: float,
    region: SourceRegion,
    others: np.ndarray,
    affine: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Masks (source, background) of points (sky pixels) for one source."""
    r = np.hypot(px - x0, py - y0)
    src = r < region.radius
    bkg = (r >= region.bkg_inner) & (r < region.bkg_outer)
    for ox, oy in others:
        bkg &= np.hypot(px - ox, py - oy) >= region.exclusion * region.radius
    if region.exclude_arms:
        # Offsets along the detector axes (RAWY, RAWZ directions) from the source.
        d = np.column_stack([px - x0, py - y0]) @ affine[:2]
        scale = np.sqrt(np.abs(np.linalg.det(affine[:2])))  # raw pixels per sky pixel
        half = region.radius * scale
        bkg &= (np.abs(d[:, 0]) >= half) & (np.abs(d[:, 1]) >= half)
    return src, bkg


def _on_chip(px: np.ndarray, py: np.ndarray, affine: np.ndarray) -> np.ndarray:
    raw = np.column_stack([px, py, np.ones_like(px)]) @ affine
    lo, hi = -0.5, C.N_PIX - 0.5
    return np.all((raw >= lo) & (raw < hi), axis=1)


def source_events(
    table: Table | Mapping[str, np.ndarray],
    sel: np.ndarray,
    source: dict[str, Any],
    region: SourceRegion,
    others: np.ndarray,
    affine: np.ndarray,
) -> SourceEvents:
    """Split the selected events of ``table`` into one source's circle and annulus.

    Parameters
    ----------
    table : Table
        L2 events (TIME, X, Y, ...), or just those columns.
    sel : ndarray of bool or None
        Selected events (:func:`select_events`); None when ``table`` holds only them.
    source : mapping
        One source-list row: SRC_ID, RA, DEC, X, Y.
    region : SourceRegion
        Region sizes.
    others : ndarray, shape (m, 2)
        Sky positions of the other sources (cut out of the annulus).
    affine : ndarray, shape (3, 2)
        Sky-to-RAW map (:func:`sky_to_raw`).

    Returns
    -------
    SourceEvents
    """
    x0, y0 = float(source["X"]), float(source["Y"])
    t, ex, ey = (np.asarray(table[c], dtype=float) for c in ("TIME", "X", "Y"))
    energy = np.asarray(table["ENERGY"], dtype=float) if "ENERGY" in _names(table) else None
    if sel is not None:
        t, ex, ey = t[sel], ex[sel], ey[sel]
        energy = None if energy is None else energy[sel]
    in_src, in_bkg = _region_masks(ex, ey, x0, y0, region, others, affine)
    src_order = np.argsort(t[in_src], kind="stable")
    bkg_order = np.argsort(t[in_bkg], kind="stable")
    # Every point of the polar grid of the circle lies inside it: only the chip cuts it.
    sx, sy, sw = _polar_grid(x0, y0, 0.0, region.radius)
    full_src = float(np.sum(sw))
    src_area = float(np.sum(sw[_on_chip(sx, sy, affine)]))
    bx, by, bw = _polar_grid(x0, y0, region.bkg_inner, region.bkg_outer)
    _, g_bkg = _region_masks(bx, by, x0, y0, region, others, affine)
    bkg_area = float(np.sum(bw[g_bkg & _on_chip(bx, by, affine)]))
    return SourceEvents(
        src_id=int(source["SRC_ID"]),
        ra=float(source["RA"]),
        dec=float(source["DEC"]),
        x=x0,
        y=y0,
        region=region,
        src_times=t[in_src][src_order],
        bkg_times=t[in_bkg][bkg_order],
        src_area=src_area,
        bkg_area=bkg_area,
        src_area_fraction=src_area / full_src if full_src > 0 else 0.0,
        src_energy=None if energy is None else energy[in_src][src_order],
        bkg_energy=None if energy is None else energy[in_bkg][bkg_order],
    )


def _names(table: Table | Mapping[str, np.ndarray]) -> list[str]:
    return list(table.colnames) if isinstance(table, Table) else list(table)


def _bins(
    kind: str,
    se: SourceEvents,
    gti: GTI,
    options: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    if kind == "fixed":
        return binning.fixed_bins(gti.tstart, gti.tstop, options.get("bin_width", 10.0), t0=options.get("t0"))
    if kind == "snr":
        return binning.snr_bins(
            se.src_times,
            gti,
            target_snr=options.get("target_snr", 3.0),
            min_counts=options.get("min_counts", 15),
            max_gap=options.get("max_gap", 1000.0),
            bkg_times=se.bkg_times,
            area_ratio=se.area_ratio,
        )
    if kind == "blocks":
        return binning.block_bins(se.src_times, gti, p0=options.get("p0", 0.05), ncp_prior=options.get("ncp_prior"))
    raise MXTInputError(f"unknown binning {kind!r}: use 'fixed', 'snr' or 'blocks'")


def extract_light_curves(
    events: EventList,
    srclist: Table,
    *,
    binning_method: str = "snr",
    region: SourceRegion | None = None,
    psf: Any = None,
    e_min: float = C.ENERGY_MIN_KEV,
    e_max: float = C.ENERGY_MAX_KEV,
    dead_time_fraction: float = 0.0,
    error_method: str = "frequentist",
    src_ids: list[int] | None = None,
    **options: Any,
) -> list[LightCurve]:
    """Light curves of the sources of a source list from an L2 event list.

    Parameters
    ----------
    events : EventList
        L2 events with their GTIs and gaps (columns TIME, X, Y, RAWY, RAWZ, ENERGY,
        PATTERN, STATUS).
    srclist : Table
        Source list (SRC_ID, RA, DEC, X, Y).
    binning_method : {'snr', 'fixed', 'blocks'}
        How bins are made (:mod:`mxt_pipeline.lightcurve.binning`).
    region : SourceRegion, optional
        Region sizes; default :func:`source_region` from ``psf``.
    psf : callable or object, optional
        Encircled-fraction function of the PSF (pixels).
    e_min, e_max : float
        Energy band (keV).
    dead_time_fraction : float
        Fraction of each frame lost to readout.
    error_method : {'frequentist', 'gehrels', 'kbn'}
        Errors of the rates.
    src_ids : list of int, optional
        Only these sources.
    **options
        Binning options: ``bin_width``, ``t0`` (fixed); ``target_snr``, ``min_counts``,
        ``max_gap`` (snr); ``p0``, ``ncp_prior`` (blocks).

    Returns
    -------
    list of LightCurve
        One per source, in source-list order.
    """
    table = events.table
    gti = events.gti
    if len(gti) == 0:
        raise MXTInputError("the event list has no good time (empty GTI)", hdu="GTI")
    for col in ("SRC_ID", "RA", "DEC", "X", "Y"):
        _column(srclist, col, "source list")
    if region is None:
        region = source_region(psf)
    sel = select_events(table, gti, e_min=e_min, e_max=e_max)
    # The selected columns once, not once per source.
    selected = {c: np.asarray(table[c], dtype=float)[sel] for c in ("TIME", "X", "Y", "ENERGY") if c in table.colnames}
    affine = sky_to_raw(table)
    frame_time = float(events.meta.get("FRAMETIM", C.FRAME_TIME_S))
    pos = np.column_stack([np.asarray(srclist["X"], float), np.asarray(srclist["Y"], float)])
    out = []
    for i, row in enumerate(srclist):
        if src_ids is not None and int(row["SRC_ID"]) not in src_ids:
            continue
        others = np.delete(pos, i, axis=0)
        se = source_events(selected, None, {k: row[k] for k in ("SRC_ID", "RA", "DEC", "X", "Y")}, region, others, affine)
        lo, hi = _bins(binning_method, se, gti, options)
        psf_fraction = region.psf_fraction
        if region.fraction_of_energy is not None and se.src_energy is not None:
            psf_fraction = spectral_psf_fraction(region.fraction_of_energy, se.src_energy, se.bkg_energy,
                                                 se.area_ratio, e_min, e_max, region.psf_fraction)  # fmt: skip
        meta = {
            "SRC_ID": se.src_id,
            "RA_OBJ": se.ra,
            "DEC_OBJ": se.dec,
            "E_MIN": float(e_min),
            "E_MAX": float(e_max),
            "BINNING": binning_method.upper(),
            "SRCRAD": region.radius,
            "BKGRIN": region.bkg_inner,
            "BKGROUT": region.bkg_outer,
            "SRCAREAF": se.src_area_fraction,
        }
        for key in ("OBS_ID", "OBJECT"):
            if key in events.meta:
                meta[key] = events.meta[key]
        out.append(
            light_curve(
                se.src_times,
                lo,
                hi,
                gti,
                bkg_times=se.bkg_times,
                area_ratio=se.area_ratio,
                psf_fraction=psf_fraction,
                dead_time_fraction=dead_time_fraction,
                frame_time=frame_time,
                error_method=error_method,
                gaps=events.gaps if isinstance(events.gaps, GapList) else None,
                meta=meta,
            )
        )
    return out
