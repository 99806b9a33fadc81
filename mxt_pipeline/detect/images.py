"""Band images in detector coordinates and their exposure maps.

The detection works on images binned in DET coordinates (DETY, DETZ: pixels from the
optical axis, axes along the instrument +Y and +Z directions), because the cross arms
of the lobster-eye PSF lie along those axes.

Frame.  Without an attitude history the images use the events' DETY/DETZ columns
directly (the instrument frame; right for a stable pointing).  With an attitude, each
event is re-projected from its RA/Dec into the DET frame of a *reference* attitude (at
``t_ref``, the GTI-weighted median time): a source that drifts on the detector because
the pointing moves stays sharp, and the exposure map takes the motion into account.

Exposure.  The relative exposure ``g`` of an image pixel (values in [0, 1]) is the
fraction of the good time during which the sky seen by that pixel fell on a live CCD
pixel:

* chip coverage: the DET pixel is sampled on a ``subsample x subsample`` grid, each
  sample mapped to RAW by the TELDEF (``det_to_raw``), counted when it lands on the
  256 x 256 chip and on a pixel that is neither a CALDB bad pixel nor a hot pixel found
  in the data (events with the HOTPIX status bit);
* attitude: the good time is split into intervals of nearly constant pointing (attitude
  samples whose rotation from the reference differs by less than ``attitude_step``
  pixels, 0.5 by default, weighted by their overlap with the GTIs); the coverage is
  computed for each (through the affine map between the reference and the current
  DET frames) and averaged with those weights;
* GTIs: only good time counts; the absolute exposure is the livetime (the GTI sum
  times the live fraction given in the event list metadata).

Vignetting is not folded into ``g``: for a lobster-eye optic it is a property of the
*source direction* (the fraction of its photons that reach the focal plane), not of
the pixel where a photon lands (a source outside the field still lights the detector
through its arms), so the fit applies the vignetting of each source to its counts
(see :mod:`mxt_pipeline.detect.pipeline`).

Background templates (:func:`background_templates`).  The background of a band is
fitted as two components with free non-negative amplitudes, as XMM ``emldetect`` and
eROSITA ``ermldet`` fit their background maps:

* the *sky* (cosmic X-ray background): photons that came through the optics, so the
  pixel at off-axis angle ``theta`` receives them in proportion to the band-averaged
  CALDB vignetting ``V_b(theta)`` (spectrum: the CXB power law of photon index
  :data:`SKY_PHOTON_INDEX`), times the relative exposure: ``t_sky = g V_b(theta) /
  V_b(0)`` (its amplitude is the sky background per pixel on the optical axis).  The
  PSF spreads the sky's photons (spot, arms, halo); for a smooth, nearly quadratic
  ``V`` that spreading adds a nearly constant term, which the flat component takes;
* the *particle* background: deposits in the detector, not through the optics, flat
  over the live pixels: ``t_part = g``.

When the CALDB has no vignetting (or a flat one) the two templates coincide and a
single flat component is fitted.

Events used: PATTERN 0-12 (imaging patterns of the EPIC-pn convention), no STATUS bit
among BADPIX, HOTPIX, INVALID_PATTERN, OUT_OF_BAND and PILEUP, TIME inside the GTIs,
ENERGY inside the band.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline import geometry as coords
from mxt_pipeline.datamodel import GTI, Attitude, EventList
from mxt_pipeline.detect.bands import EnergyBand
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io.formats import STATUS_BITS

__all__ = [
    "SKY_PHOTON_INDEX",
    "background_templates",
    "DetectionImages",
    "REJECT_STATUS",
    "detector_grid",
    "chip_coverage",
    "select_events",
    "bin_events",
    "attitude_clusters",
    "build_images",
]

#: STATUS bits that exclude an event from the images.
REJECT_STATUS = (
    STATUS_BITS["BADPIX"]
    | STATUS_BITS["HOTPIX"]
    | STATUS_BITS["INVALID_PATTERN"]
    | STATUS_BITS["OUT_OF_BAND"]
    | STATUS_BITS["PILEUP"]
)
#: Highest PATTERN code used for imaging (0 single ... 12 quadruples).
MAX_IMAGING_PATTERN = 12
#: Photon index of the cosmic X-ray background (De Luca & Molendi 2004): the spectrum
#: over which the vignetting of the sky background component is averaged in a band.
SKY_PHOTON_INDEX = 1.41
#: A sky template within this relative deviation of flat is treated as flat.
FLAT_TOLERANCE = 1e-3


@dataclass
class DetectionImages:
    """Band images on a DET grid with the relative exposure and the time information.

    Attributes
    ----------
    y_edges, z_edges : ndarray
        Pixel edges along DETY and DETZ (pixels from the optical axis).
    counts : list of ndarray (ny, nz)
        One image per band, indexed [y, z].
    exposure : ndarray (ny, nz)
        Relative exposure in [0, 1].
    livetime : float
        Live time of the GTIs (s): the exposure of a pixel with ``g = 1``.
    bands : tuple of EnergyBand
    t_ref : float or None
        Time of the reference attitude when the images were re-projected.
    """

    y_edges: np.ndarray
    z_edges: np.ndarray
    counts: list[np.ndarray]
    exposure: np.ndarray
    livetime: float
    bands: tuple[EnergyBand, ...]
    t_ref: float | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.exposure.shape  # type: ignore[return-value]


def detector_grid(teldef, n_pix: int = C.N_PIX) -> tuple[np.ndarray, np.ndarray]:
    """DET pixel edges covering the chip, one-pixel step.

    The chip corners (RAW -0.5 and n_pix - 0.5) are mapped to DET; the grid spans their
    bounding box.  For a TELDEF without rotation the edges coincide with the RAW pixel
    boundaries.
    """
    ry = np.array([-0.5, n_pix - 0.5, -0.5, n_pix - 0.5])
    rz = np.array([-0.5, -0.5, n_pix - 0.5, n_pix - 0.5])
    dy, dz = teldef.raw_to_det(ry, rz)
    dy, dz = np.asarray(dy, float), np.asarray(dz, float)
    out = []
    for lo, hi in ((dy.min(), dy.max()), (dz.min(), dz.max())):
        n = int(np.ceil(hi - lo - 1e-6))
        out.append(lo + np.arange(n + 1, dtype=float))
    return out[0], out[1]


def _subsample_points(edges: np.ndarray, subsample: int) -> np.ndarray:
    """Sample coordinates inside each pixel: (n_pix, subsample)."""
    frac = (np.arange(subsample) + 0.5) / subsample
    width = np.diff(edges)
    return edges[:-1, None] + width[:, None] * frac[None, :]


def chip_coverage(
    y_edges: np.ndarray,
    z_edges: np.ndarray,
    teldef,
    bad_mask: np.ndarray | None = None,
    *,
    subsample: int = 4,
    transform=None,
    n_pix: int = C.N_PIX,
) -> np.ndarray:
    """Fraction of each DET pixel that falls on live CCD pixels.

    Parameters
    ----------
    y_edges, z_edges : ndarray
        Grid edges (DET pixels).
    teldef : Teldef-like
        Provides ``det_to_raw``.
    bad_mask : ndarray of bool (n_pix, n_pix), optional
        True for dead pixels, indexed [RAWY, RAWZ].
    subsample : int
        Samples per pixel along each axis.
    transform : callable, optional
        ``transform(dety, detz) -> (dety, detz)`` applied to the sample points before
        the TELDEF (the attitude motion from the reference frame).

    Returns
    -------
    ndarray (ny, nz) in [0, 1]
    """
    sy = _subsample_points(np.asarray(y_edges, float), subsample)
    sz = _subsample_points(np.asarray(z_edges, float), subsample)
    ny, nz = sy.shape[0], sz.shape[0]
    yy = np.broadcast_to(sy[:, None, :, None], (ny, nz, subsample, subsample)).ravel()
    zz = np.broadcast_to(sz[None, :, None, :], (ny, nz, subsample, subsample)).ravel()
    if transform is not None:
        yy, zz = transform(yy, zz)
    ry, rz = teldef.det_to_raw(yy, zz)
    iy = coords.raw_pixel(ry)
    iz = coords.raw_pixel(rz)
    live = (iy >= 0) & (iy < n_pix) & (iz >= 0) & (iz < n_pix)
    if bad_mask is not None:
        bad = np.asarray(bad_mask, bool)
        if bad.shape != (n_pix, n_pix):
            raise MXTInputError(f"bad-pixel mask of shape {bad.shape}, expected {(n_pix, n_pix)}")
        ok = live.copy()
        ok[live] = ~bad[iy[live], iz[live]]
        live = ok
    return live.reshape(ny, nz, subsample * subsample).mean(axis=2)


def select_events(events: EventList, band: EnergyBand | None = None, gti: GTI | None = None) -> np.ndarray:
    """Boolean mask of the events used for imaging (see the module docstring)."""
    n = len(events)
    keep = np.ones(n, bool)
    cols = events.table.colnames
    if "STATUS" in cols:
        keep &= (events["STATUS"].astype(np.int64) & REJECT_STATUS) == 0
    if "PATTERN" in cols:
        keep &= events["PATTERN"] <= MAX_IMAGING_PATTERN
    gti = events.gti if gti is None else gti
    if len(gti):
        keep &= gti.contains(events["TIME"])
    if band is not None:
        keep &= band.contains(events["ENERGY"])
    return keep


def bin_events(dety: np.ndarray, detz: np.ndarray, y_edges: np.ndarray, z_edges: np.ndarray) -> np.ndarray:
    """Counts per grid pixel of event positions (events off the grid are dropped)."""
    iy = np.searchsorted(y_edges, dety, side="right") - 1
    iz = np.searchsorted(z_edges, detz, side="right") - 1
    ny, nz = len(y_edges) - 1, len(z_edges) - 1
    ok = (iy >= 0) & (iy < ny) & (iz >= 0) & (iz < nz)
    flat = np.bincount(iy[ok] * nz + iz[ok], minlength=ny * nz)
    return flat.reshape(ny, nz).astype(np.int64)


def attitude_clusters(
    attitude: Attitude, gti: GTI, teldef, attitude_step: float = 0.5
) -> tuple[float, np.ndarray, np.ndarray]:
    """Split the good time into intervals of nearly constant pointing.

    Each attitude sample stands for the time from the midpoint with its predecessor to
    the midpoint with its successor, clipped to the GTIs.  The pointing difference from
    the reference is measured by where the optical axis of the reference frame falls at
    the sample's time (DET pixels) and by the roll difference (turned into the pixel
    shift it causes at the chip corner); samples are grouped when these agree within
    ``attitude_step`` pixels.

    Returns
    -------
    t_ref : float
        Reference time: the GTI-weighted median time.
    times : ndarray (M,)
        A representative time per cluster.
    weights : ndarray (M,)
        Good time of each cluster (s).
    """
    t = attitude["TIME"]
    if len(t) == 0:
        raise MXTInputError("empty attitude", hdu="ATTITUDE")
    if len(gti) == 0:
        raise MXTInputError("no good time", hdu="GTI")
    if len(t) == 1:
        return float(t[0]), t.copy(), np.array([gti.exposure])
    mid = 0.5 * (t[1:] + t[:-1])
    lo = np.r_[min(t[0], gti.tstart), mid]
    hi = np.r_[mid, max(t[-1], gti.tstop)]
    weight = gti.overlap(lo, hi)
    use = weight > 0
    if not np.any(use):
        raise MXTInputError("the attitude does not cover the good time", hdu="ATTITUDE")
    t, weight = t[use], weight[use]
    cum = np.cumsum(weight)
    t_ref = float(t[np.searchsorted(cum, 0.5 * cum[-1])])
    ref = attitude.rotation(np.array([t_ref]))
    # Direction of the reference optical axis and of a chip corner, seen at each time.
    half = 0.5 * C.N_PIX
    probe_y = np.array([0.0, half])
    probe_z = np.array([0.0, half])
    ra, dec = coords.det_to_radec(probe_y, probe_z, t_ref, ref, teldef)
    shifts = []
    for ra_k, dec_k in zip(ra, dec):
        dy, dz = coords.radec_to_det(np.full(t.size, ra_k), np.full(t.size, dec_k), t, attitude, teldef)
        shifts.append(np.stack([dy, dz], axis=1))
    key = np.concatenate(shifts, axis=1) - np.r_[probe_y[0], probe_z[0], probe_y[1], probe_z[1]][None, :]
    q = np.round(key / attitude_step).astype(np.int64)
    _, inverse = np.unique(q, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    n_cl = int(inverse.max()) + 1
    w = np.bincount(inverse, weights=weight, minlength=n_cl)
    # Representative time: the weighted mean time of the cluster's samples.
    times = np.bincount(inverse, weights=weight * t, minlength=n_cl) / w
    return t_ref, times, w


def _motion(teldef, attitude: Attitude, ref, t_ref: float, t_k: float):
    """Affine map from the reference DET frame to the DET frame at time ``t_k``.

    Fitted exactly through the images of three points (the optical axis and two points
    100 pixels along each axis): for pointing changes of a fraction of a degree the map
    is affine to far below 0.01 pixel over the chip (the gnomonic distortion is of
    order angle^2), and evaluating it costs nothing against the full transform chain.
    """
    py = np.array([0.0, 100.0, 0.0])
    pz = np.array([0.0, 0.0, 100.0])
    ra, dec = coords.det_to_radec(py, pz, t_ref, ref, teldef)
    qy, qz = coords.radec_to_det(ra, dec, t_k, attitude, teldef)
    origin = np.array([qy[0], qz[0]])
    jac = np.array([[qy[1] - qy[0], qy[2] - qy[0]], [qz[1] - qz[0], qz[2] - qz[0]]]) / 100.0

    def transform(yy: np.ndarray, zz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return origin[0] + jac[0, 0] * yy + jac[0, 1] * zz, origin[1] + jac[1, 0] * yy + jac[1, 1] * zz

    return transform


def build_images(
    events: EventList,
    bands: Sequence[EnergyBand],
    teldef,
    *,
    bad_mask: np.ndarray | None = None,
    attitude: Attitude | None = None,
    subsample: int = 4,
    attitude_step: float = 0.5,
) -> DetectionImages:
    """Band images and the relative exposure of an L2 event list (module docstring).

    Parameters
    ----------
    events : EventList
        L2 events with DETY, DETZ, ENERGY, TIME (and RA, DEC when ``attitude`` is
        given), PATTERN and STATUS; ``events.gti`` the good time.
    bands : sequence of EnergyBand
    teldef : Teldef-like
        CALDB TELDEF (``raw_to_det``, ``det_to_raw``, ``det_to_angles``, ``angles_to_det``).
    bad_mask : ndarray of bool (256, 256), optional
        CALDB bad pixels, [RAWY, RAWZ].
    attitude : Attitude, optional
        Attitude history: re-project the events to the reference attitude.

    Returns
    -------
    DetectionImages
    """
    if not len(events.gti):
        raise MXTInputError("the event list has no good time interval", hdu="GTI")
    y_edges, z_edges = detector_grid(teldef)
    bad = np.zeros((C.N_PIX, C.N_PIX), bool) if bad_mask is None else np.array(bad_mask, bool)
    cols = events.table.colnames
    if "STATUS" in cols and "RAWY" in cols and len(events):
        hot = (events["STATUS"].astype(np.int64) & STATUS_BITS["HOTPIX"]) != 0
        ry, rz = events["RAWY"][hot].astype(int), events["RAWZ"][hot].astype(int)
        inside = (ry >= 0) & (ry < C.N_PIX) & (rz >= 0) & (rz < C.N_PIX)
        bad[ry[inside], rz[inside]] = True
    t_ref = None
    base = select_events(events)
    if attitude is None:
        dety, detz = events["DETY"].astype(float), events["DETZ"].astype(float)
        exposure = chip_coverage(y_edges, z_edges, teldef, bad, subsample=subsample)
    else:
        t_ref, times, weights = attitude_clusters(attitude, events.gti, teldef, attitude_step)
        ref = attitude.rotation(np.array([t_ref]))
        dety = np.full(len(events), np.nan)
        detz = np.full(len(events), np.nan)
        if np.any(base):
            dy, dz = coords.radec_to_det(events["RA"][base], events["DEC"][base], t_ref, ref, teldef)
            dety[base], detz[base] = dy, dz
        exposure = np.zeros((y_edges.size - 1, z_edges.size - 1))
        # With several pointings the average smooths the pixel edges; half the
        # sub-sampling per pointing is then enough.
        sub = subsample if times.size == 1 else max(2, subsample // 2)
        for t_k, w_k in zip(times, weights):
            exposure += w_k * chip_coverage(
                y_edges, z_edges, teldef, bad, subsample=sub, transform=_motion(teldef, attitude, ref, t_ref, t_k)
            )
        exposure /= weights.sum()
    counts = []
    for band in bands:
        sel = base & band.contains(events["ENERGY"])
        counts.append(bin_events(dety[sel], detz[sel], y_edges, z_edges))
    live_fraction = 1.0
    ontime = float(events.meta.get("ONTIME", events.gti.exposure) or events.gti.exposure)
    if ontime > 0 and "LIVETIME" in events.meta:
        live_fraction = float(events.meta["LIVETIME"]) / ontime
    livetime = events.gti.exposure * live_fraction
    return DetectionImages(y_edges, z_edges, counts, exposure, float(livetime), tuple(bands), t_ref)


def background_templates(
    exposure: np.ndarray,
    y_edges: np.ndarray,
    z_edges: np.ndarray,
    theta_of,
    vignetting,
    n_bands: int,
    *,
    n_theta: int = 256,
) -> list[np.ndarray]:
    """Background component templates of every band: sky (vignetted) and particle (flat).

    Parameters
    ----------
    exposure : ndarray (ny, nz)
        Relative exposure ``g``.
    y_edges, z_edges : ndarray
        Grid edges (DET pixels).
    theta_of : callable
        ``theta_of(y, z) -> arcmin``: off-axis angle of DET positions.
    vignetting : callable or None
        ``vignetting(theta) -> (S, n_bands)``: band-averaged vignetting of sky directions
        (``DetectionCalibration.band_vignetting(bands, SKY_PHOTON_INDEX)``); None for none.
    n_bands : int
    n_theta : int
        Samples of the vignetting in off-axis angle (linear interpolation between them;
        the CALDB curves are smooth on the arcminute scale).

    Returns
    -------
    list of ndarray (K, ny, nz)
        Per band, ``[g V_b(theta) / V_b(0), g]`` (K = 2), or ``[g]`` (K = 1) when the
        vignetting is flat over the usable pixels in every band (within
        :data:`FLAT_TOLERANCE`; then the two templates would be the same).
    """
    g = np.asarray(exposure, float)
    flat = [g[None].copy() for _ in range(n_bands)]
    if vignetting is None:
        return flat
    yc = 0.5 * (np.asarray(y_edges, float)[1:] + np.asarray(y_edges, float)[:-1])
    zc = 0.5 * (np.asarray(z_edges, float)[1:] + np.asarray(z_edges, float)[:-1])
    yy, zz = np.meshgrid(yc, zc, indexing="ij")
    theta = np.asarray(theta_of(yy.ravel(), zz.ravel()), float).reshape(yy.shape)
    grid = np.linspace(0.0, max(float(theta.max()), 1e-6), n_theta)
    v_grid = np.asarray(vignetting(grid), float).reshape(n_theta, n_bands)
    v0 = v_grid[0]
    if np.any(~np.isfinite(v_grid)) or np.any(v_grid < 0) or np.any(v0 <= 0):
        raise MXTInputError("the band-averaged vignetting must be finite, >= 0 and > 0 on axis")
    usable = g > 0
    out = []
    deviation = 0.0
    for b in range(n_bands):
        shape = np.interp(theta, grid, v_grid[:, b] / v0[b])
        if np.any(usable):
            deviation = max(deviation, float(np.max(np.abs(shape[usable] - 1.0))))
        out.append(np.stack([g * shape, g]))
    return out if deviation > FLAT_TOLERANCE else flat
