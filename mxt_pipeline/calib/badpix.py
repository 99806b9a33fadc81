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

__all__ = ["HotPixelResult", "find_hot_pixels", "pixel_status_map", "caldb_bad_mask"]

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
