"""Bad pixels: the CALDB list plus a search for hot pixels in the observation itself.

A **hot pixel** is a pixel whose number of hits over the observation is a Poisson
outlier with respect to its neighbourhood:

* expected count ``mu``: the mean count of the ``box x box`` pixels around it (itself
  excluded, CALDB bad pixels and pixels already found hot excluded), raised to its
  Gehrels (1986) upper 1-sigma limit ``(S + 1 + sqrt(S + 0.75)) / M`` (``S`` counts in
  ``M`` pixels) so that a quiet neighbourhood with few or no counts does not make a
  single stray hit look significant;
* ``mu`` is raised further to ``F = 3`` times the median of the 8 nearest neighbours:
  a sky source cannot make a pixel more than ``F`` times brighter than the median of
  its neighbours unless its image is sharper than 2.2 pixels FWHM (30"; for a Gaussian
  spot integrated over pixels the worst-case ratio is 3.45 at FWHM 2 px, 2.28 at
  2.5 px, 1.55 at 3.5 px), far sharper than the arcminute MXT point-spread function,
  whereas a hot pixel stands alone.  Without this bound a bright, compact source would
  be flagged as a cluster of hot pixels (its peak is a significant excess over the
  5x5 mean);
* the pixel is hot when ``P(N >= n | mu) < alpha / 65536`` (Bonferroni over the
  detector), with ``alpha = 1e-3`` by default: at the nominal rate at most one falsely
  flagged pixel per thousand observations; the Gehrels limit makes the test more
  conservative still (the tests measure the false-flag rate on flat and peaked fields);
* the search is repeated (``n_iter`` times) so that a cluster of hot pixels, which
  inflates its own neighbourhood, is peeled off from the brightest down.

The neighbourhood is 5x5: a point source spot (FWHM of several arcmin, i.e. 15+
pixels) changes by only a few percent over it, so a source peak is flagged only beyond
about 10^4 counts in one pixel (far beyond pile-up).

The per-pixel status image combines BADPIX (CALDB), HOTPIX (found here), NEAR_BADPIX
(the 8 neighbours of either) and BORDER (outermost rows and columns, where charge can be
lost), using the bits of :data:`mxt_pipeline.io.formats.STATUS_BITS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special

from mxt_pipeline import constants as C
from mxt_pipeline.io.formats import STATUS_BITS

__all__ = [
    "HotPixelResult",
    "WarmPixelResult",
    "find_hot_pixels",
    "find_warm_columns",
    "find_warm_pixels",
    "pixel_status_map",
    "caldb_bad_mask",
]

_N = C.N_PIX
#: Largest ratio of a sky pixel to the median of its 8 neighbours (see module docstring).
_PSF_RATIO = 3.0


@dataclass(frozen=True)
class HotPixelResult:
    """Outcome of :func:`find_hot_pixels`.

    Attributes
    ----------
    mask : ndarray of bool, shape (256, 256)
        Hot pixels, indexed ``[RAWY, RAWZ]``.
    counts : ndarray of int, shape (256, 256)
        Hits per pixel over the observation.
    expected : ndarray of float, shape (256, 256)
        Expected count from the neighbourhood at the last iteration.
    alpha : float
        Nominal false-flag rate per observation.
    """

    mask: np.ndarray
    counts: np.ndarray
    expected: np.ndarray
    alpha: float

    @property
    def pixels(self) -> np.ndarray:
        """(RAWY, RAWZ) of the hot pixels, shape (n, 2)."""
        return np.argwhere(self.mask)


def caldb_bad_mask(badpix) -> np.ndarray:
    """Bool image [RAWY, RAWZ] of the CALDB bad pixels (``BadPixels.mask()``); None -> none."""
    if badpix is None:
        return np.zeros((_N, _N), dtype=bool)
    mask = np.asarray(badpix.mask(), dtype=bool)
    if mask.shape != (_N, _N):
        raise ValueError(f"bad-pixel mask has shape {mask.shape}, expected {(_N, _N)}")
    return mask


def pixel_counts(rawy: np.ndarray, rawz: np.ndarray) -> np.ndarray:
    """Hits per pixel, image [RAWY, RAWZ]."""
    idx = np.asarray(rawy, dtype=np.intp) * _N + np.asarray(rawz, dtype=np.intp)
    return np.bincount(idx, minlength=_N * _N).reshape(_N, _N)


def _neighbour_median(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Median of the valid ones among the 8 nearest neighbours of each pixel (0 if none)."""
    padded = np.pad(np.where(valid, values, np.nan), 1, constant_values=np.nan)
    n0, n1 = values.shape
    stack = np.stack(
        [padded[1 + dy : 1 + dy + n0, 1 + dz : 1 + dz + n1] for dy in (-1, 0, 1) for dz in (-1, 0, 1) if dy or dz]
    )
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbourhoods
            med = np.nanmedian(stack, axis=0)
    return np.nan_to_num(med, nan=0.0)


def find_hot_pixels(
    counts: np.ndarray,
    known_bad: np.ndarray | None = None,
    *,
    alpha: float = 1e-3,
    box: int = 5,
    n_iter: int = 3,
) -> HotPixelResult:
    """Find hot pixels: Poisson outliers of the hit counts versus their neighbourhood.

    Parameters
    ----------
    counts : ndarray of int, shape (256, 256)
        Hits per pixel over the observation (:func:`pixel_counts`).
    known_bad : ndarray of bool, optional
        CALDB bad pixels: excluded from the neighbourhood means and never reported as
        newly found.
    alpha : float
        Nominal number of falsely flagged pixels per observation.
    box : int
        Odd side of the neighbourhood.
    n_iter : int
        Maximum number of peeling iterations.
    """
    counts = np.asarray(counts)
    known = np.zeros(counts.shape, dtype=bool) if known_bad is None else np.asarray(known_bad, dtype=bool)
    hot = np.zeros(counts.shape, dtype=bool)
    cf = counts.astype(float)
    threshold = alpha / counts.size
    expected = np.zeros(counts.shape)
    for _ in range(n_iter):
        valid = ~(known | hot)
        vals = np.where(valid, cf, 0.0)
        # Box sums (zero padding outside the detector) minus the pixel itself.
        s = ndimage.uniform_filter(vals, size=box, mode="constant") * box * box - vals
        m = ndimage.uniform_filter(valid.astype(float), size=box, mode="constant") * box * box - valid
        s = np.maximum(s, 0.0)  # round-off of the filter
        m = np.maximum(np.rint(m), 1.0)
        expected = np.maximum((s + 1.0 + np.sqrt(s + 0.75)) / m, _PSF_RATIO * _neighbour_median(cf, valid))
        # P(N >= n | mu) = regularised lower incomplete gamma P(n, mu) for n >= 1.
        n = np.maximum(cf, 1.0)
        p = special.gammainc(n, expected)
        new = (cf >= 1) & (p < threshold) & valid
        if not new.any():
            break
        hot |= new
    return HotPixelResult(mask=hot, counts=counts, expected=expected, alpha=alpha)


def pixel_status_map(bad: np.ndarray, hot: np.ndarray | None = None) -> np.ndarray:
    """STATUS bits of each pixel (int32 image [RAWY, RAWZ]).

    BADPIX on CALDB bad pixels, HOTPIX on hot pixels, NEAR_BADPIX on the 8 neighbours of
    either (not on the pixels themselves), BORDER on the outermost rows and columns.
    """
    bad = np.asarray(bad, dtype=bool)
    hot = np.zeros_like(bad) if hot is None else np.asarray(hot, dtype=bool)
    status = np.zeros(bad.shape, dtype=np.int32)
    status[bad] |= STATUS_BITS["BADPIX"]
    status[hot] |= STATUS_BITS["HOTPIX"]
    either = bad | hot
    near = ndimage.binary_dilation(either, structure=np.ones((3, 3), dtype=bool)) & ~either
    status[near] |= STATUS_BITS["NEAR_BADPIX"]
    border = np.zeros(bad.shape, dtype=bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    status[border] |= STATUS_BITS["BORDER"]
    return status


# --------------------------------------------------------------------------------------
# Per-observation search for warm and flickering pixels and columns (issue 21, item 2)
# --------------------------------------------------------------------------------------

#: Largest ratio of a column's event count to the median of its neighbour columns that
#: the sky can make (measured on the CALDB PSF: 1.3 for a 1e5-count source on axis and
#: along the cross arm; see ``docs/calibration.md``).
_COLUMN_PSF_RATIO = 2.0
#: Pseudo-events of the detector-wide time profile added to a neighbourhood's (2 per time
#: bin: a sparse neighbourhood's own noise must not make an ordinary bin look empty).
_PRIOR_EVENTS = 64.0


@dataclass(frozen=True)
class WarmPixelResult:
    """Outcome of :func:`find_warm_pixels`.

    Attributes
    ----------
    mask : ndarray of bool, shape (256, 256)
        Every pixel to flag (warm pixels, pixels of warm columns, flickering pixels and
        columns), indexed ``[RAWY, RAWZ]``.
    warm_pixels, flickering_pixels : ndarray of int, shape (n, 2)
        (RAWY, RAWZ) of the pixels found by the spatial and by the time test.
    warm_columns, flickering_columns : ndarray of int
        RAWY of the columns found by the spatial and by the time test.
    alpha : float
        Nominal false flags per observation of each test.
    """

    mask: np.ndarray
    warm_pixels: np.ndarray
    warm_columns: np.ndarray
    flickering_pixels: np.ndarray
    flickering_columns: np.ndarray
    alpha: float

    def to_dict(self) -> dict:
        """JSON-ready summary (the calibration report's ``pixel_search``)."""
        return {
            "alpha": float(self.alpha),
            "warm_pixels": self.warm_pixels.tolist(),
            "warm_columns": self.warm_columns.tolist(),
            "flickering_pixels": self.flickering_pixels.tolist(),
            "flickering_columns": self.flickering_columns.tolist(),
            "n_pixels_flagged": int(self.mask.sum()),
        }


def _gehrels_up(s: np.ndarray) -> np.ndarray:
    """Gehrels (1986) one-sigma upper limit on a Poisson mean, ``S + 1 + sqrt(S + 3/4)``."""
    return s + 1.0 + np.sqrt(s + 0.75)


def find_warm_columns(
    counts: np.ndarray,
    known_bad: np.ndarray | None = None,
    *,
    alpha: float = 1e-3,
    half_width: int = 4,
    ratio: float = _COLUMN_PSF_RATIO,
    n_iter: int = 5,
) -> np.ndarray:
    """Columns (RAWY) whose event count is a Poisson outlier against their neighbours.

    The count ``C`` of a column (its valid pixels, ``M`` of them) is compared with the
    expectation ``M r`` from the columns within ``half_width`` on either side (already
    flagged ones left out): ``r`` is the larger of the Gehrels upper limit of their
    mean rate per pixel and ``ratio`` times the median of their rates (a sky source
    cannot make one column that much brighter than its neighbours: the PSF is far wider
    than a column, also along its cross arm).  Flagged when ``P(N >= C | M r)`` is below
    ``alpha / 256`` (Bonferroni over the columns); repeated so that a group of warm
    columns is peeled off.

    Parameters
    ----------
    counts : ndarray (256, 256)
        Events per pixel, ``[RAWY, RAWZ]``.
    known_bad : ndarray of bool, optional
        Pixels left out of the counts (CALDB bad pixels, hot pixels already found).

    Returns
    -------
    ndarray of bool, shape (256,)
        The warm columns.
    """
    cf = np.asarray(counts, dtype=float)
    valid_pix = np.ones(cf.shape, bool) if known_bad is None else ~np.asarray(known_bad, bool)
    col_c = np.where(valid_pix, cf, 0.0).sum(axis=1)
    col_m = valid_pix.sum(axis=1).astype(float)
    n = col_c.size
    flagged = np.zeros(n, bool)
    threshold = alpha / n
    offsets = [d for d in range(-half_width, half_width + 1) if d]
    for _ in range(n_iter):
        usable = ~flagged & (col_m > 0)
        s_nb = np.zeros(n)
        m_nb = np.zeros(n)
        rates = np.full((len(offsets), n), np.nan)
        for i, d in enumerate(offsets):
            idx = np.arange(n) + d
            ok = (idx >= 0) & (idx < n)
            src = idx[ok]
            use = usable[src]
            s_nb[ok] += np.where(use, col_c[src], 0.0)
            m_nb[ok] += np.where(use, col_m[src], 0.0)
            rates[i, np.flatnonzero(ok)[use]] = col_c[src][use] / col_m[src][use]
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nan_to_num(np.nanmedian(rates, axis=0), nan=0.0)
            r = np.maximum(_gehrels_up(s_nb) / np.maximum(m_nb, 1.0), ratio * med)
        mu = r * col_m
        p = special.gammainc(np.maximum(col_c, 1.0), mu)  # P(N >= C | mu) for C >= 1
        new = usable & (col_c >= 1) & (m_nb > 0) & (p < threshold)
        if not new.any():
            break
        flagged |= new
    return flagged


def _time_bins(frames: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each frame: ``n_bins`` bins holding equal numbers of events."""
    f = np.asarray(frames, dtype=float)
    edges = np.unique(np.quantile(f, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, f, side="right")


def _concentration_p(h: np.ndarray, h_ref: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Bonferroni p-value of the most over-populated time bin of each unit.

    ``h`` (units, bins): the unit's events per time bin; ``h_ref``: those of its
    neighbourhood; ``prior``: the detector's share of events per bin.  The share a bin
    should hold is the neighbourhood's, each bin raised by one standard deviation
    ``sqrt(h_ref)`` and regularised with :data:`_PRIOR_EVENTS` pseudo-events spread as
    the detector's profile (which dominates where the neighbourhood is nearly empty),
    so that a sky source that varies (its neighbours vary with it) is not a flicker.
    """
    n = h.sum(axis=1, keepdims=True)
    n_ref = h_ref.sum(axis=1, keepdims=True)
    k = _PRIOR_EVENTS
    share = np.minimum((h_ref + np.sqrt(h_ref) + k * prior[None, :]) / (n_ref + k), 1.0)
    # Binomial P(X >= h | n, share) = I_share(h, n - h + 1) for h >= 1 (scipy.special:
    # importing scipy.stats would cost the chain most of a second).
    nn = np.broadcast_to(n, h.shape)
    p_bin = np.where(h >= 1, special.betainc(np.maximum(h, 1.0), np.maximum(nn - h + 1.0, 1.0), share), 1.0)
    return np.minimum(p_bin.min(axis=1) * h.shape[1], 1.0)


def find_warm_pixels(
    rawy: np.ndarray,
    rawz: np.ndarray,
    frame: np.ndarray,
    known_bad: np.ndarray | None = None,
    *,
    alpha: float = 1e-3,
    n_time_bins: int = 32,
    min_counts: int = 3,
) -> WarmPixelResult:
    """Warm and flickering pixels and columns of one observation, from its events.

    Three tests on the valid events (imaging patterns, in band, not on a known bad
    pixel), each at a nominal ``alpha`` false flags per observation:

    * **warm pixels**: :func:`find_hot_pixels` on the event image (a pixel against its
      5 x 5 neighbourhood);
    * **warm columns**: :func:`find_warm_columns` (a column against the 8 columns
      around it);
    * **flickering pixels and columns**: for every pixel and column with at least
      ``min_counts`` events, its events in ``n_time_bins`` time bins (equal numbers of
      detector events) against the time profile of its neighbourhood (:func:`_concentration_p`);
      flagged when the most over-populated bin has a Bonferroni p-value below
      ``alpha`` over the units tested.

    Parameters
    ----------
    rawy, rawz, frame : ndarray of int
        Main pixel and frame of each valid event.
    known_bad : ndarray of bool (256, 256), optional
        CALDB bad pixels and hot pixels already flagged: left out and never reported.
    """
    y = np.asarray(rawy, dtype=np.intp)
    z = np.asarray(rawz, dtype=np.intp)
    known = np.zeros((_N, _N), bool) if known_bad is None else np.asarray(known_bad, bool)
    keep = ~known[y, z]
    y, z, f = y[keep], z[keep], np.asarray(frame)[keep]
    counts = pixel_counts(y, z)
    warm = find_hot_pixels(counts, known, alpha=alpha).mask & ~known
    excl = known | warm
    cols = find_warm_columns(counts, excl, alpha=alpha)
    excl_c = excl | cols[:, None]
    flick_pix = np.zeros((_N, _N), bool)
    flick_col = np.zeros(_N, bool)
    if y.size >= n_time_bins * min_counts:
        tb = _time_bins(f, n_time_bins)
        nb = int(tb.max()) + 1
        prior = np.bincount(tb, minlength=nb) / tb.size
        valid = ~excl_c[y, z]
        flat = (y[valid] * _N + z[valid]) * nb + tb[valid]
        cube = np.bincount(flat, minlength=_N * _N * nb).reshape(_N, _N, nb).astype(float)
        # Pixels: against the 5x5 box around them (itself left out).
        tested = (cube.sum(axis=2) >= min_counts) & ~excl_c
        if tested.any():
            box = ndimage.uniform_filter(cube, size=(5, 5, 1), mode="constant") * 25.0 - cube
            iy, iz = np.nonzero(tested)
            p = _concentration_p(cube[iy, iz], np.maximum(box[iy, iz], 0.0), prior)
            hit = p < alpha / max(iy.size, 1)
            flick_pix[iy[hit], iz[hit]] = True
        # Columns: against the columns within 4 on either side.
        col_h = cube.sum(axis=1)
        usable = ~cols
        ref = np.zeros_like(col_h)
        for d in (-4, -3, -2, -1, 1, 2, 3, 4):
            idx = np.arange(_N) + d
            ok = (idx >= 0) & (idx < _N)
            ref[ok] += col_h[idx[ok]] * usable[idx[ok], None]
        tc = (col_h.sum(axis=1) >= min_counts) & usable
        if tc.any():
            ic = np.flatnonzero(tc)
            p = _concentration_p(col_h[ic], ref[ic], prior)
            flick_col[ic[p < alpha / ic.size]] = True
    mask = (warm | cols[:, None] | flick_pix | flick_col[:, None]) & ~known
    return WarmPixelResult(
        mask=mask,
        warm_pixels=np.argwhere(warm),
        warm_columns=np.flatnonzero(cols),
        flickering_pixels=np.argwhere(flick_pix),
        flickering_columns=np.flatnonzero(flick_col),
        alpha=alpha,
    )
