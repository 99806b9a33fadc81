"""Where to put the next source: likelihood gains of one more point source.

Both detection stages grow their source list one source at a time.  Given a *base*
model (the sources found so far and the background), the gain of adding a point source
of free counts at ``x`` is

    dC(x) = C(base) - min_{N_b >= 0} C(base + sum_b N_b g P_b(. | x))

summed over bands (each band has its own counts).  For one source and one band the
minimum over ``N`` is 1-D and convex; its derivative is concave and increasing in N, so
Newton's method started at N = 0 approaches the root from below without overshoot
(:func:`add_one_gain`, vectorised over many trial positions).

Three ways to propose positions, all ranked by the exact dC above:

* :func:`projection_gain`: the gain along one axis for the RAWY (or RAWZ) projection
  of the images (the 1-D histograms of stage 1).  A source inside the field shows as
  a peak of its spot plus the cross arm perpendicular to the axis; a source *outside*
  the field leaks in through the arm that crosses the detector, which is a narrow peak
  in the projection across it.
* :func:`line_gain`: the exact 2-D gain along a line (fixed y, scanning z over the
  grid and the margin outside it), which pairs each 1-D peak with its other coordinate,
  even off the chip.
* :func:`ts_map`: the score-test map ``TS = sum_b max(S_b, 0)^2 / I_b`` on the pixel
  centres, ``S_b`` and ``I_b`` the score and expected Fisher information of the counts
  at N = 0 (one Newton step from N = 0: the local approximation of dC), computed for
  every pixel at once by FFT convolutions with the PSF and its square.  It finds a
  second source beside a fitted one, where projections overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

from mxt_pipeline.detect.likelihood import MODEL_FLOOR
from mxt_pipeline.detect.problem import DetectionProblem

__all__ = [
    "Candidate",
    "add_one_gain",
    "base_at_counts",
    "projection_gain",
    "line_gain",
    "ts_map",
    "gain_at",
    "propose",
]

#: Far edges used when one axis of the PSF terms is not needed (fraction ~ 1).
_WIDE = np.array([-1e7, 1e7])


@dataclass(frozen=True)
class Candidate:
    """A proposed source: position (DET pixels), likelihood gain, counts per band."""

    y: float
    z: float
    gain: float
    counts: tuple[float, ...]
    origin: str


def add_one_gain(
    a: np.ndarray, tot: np.ndarray, c: np.ndarray, m0: np.ndarray, n_iter: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """Gain of C and best counts when one source is added, for J trial positions.

    Parameters
    ----------
    a : ndarray (J, n)
        Model per unit counts of the new source at the ``n`` bins with counts.
    tot : ndarray (J,)
        The same summed over all bins.
    c, m0 : ndarray (n,)
        Counts and base model at those bins.

    Returns
    -------
    gain : ndarray (J,)
        ``C(base) - min_N C(base + N a)`` (>= 0).
    counts : ndarray (J,)
        The minimising N.
    """
    a = np.atleast_2d(a)
    n = np.zeros(a.shape[0])
    m0 = np.maximum(m0, MODEL_FLOOR)
    r0 = c / m0
    # Only positions with a positive score at N = 0 gain anything (C is convex in N).
    active = np.flatnonzero(a @ r0 - tot > 0.0)
    for _ in range(n_iter):
        if active.size == 0:
            break
        aa = a[active]
        m = np.maximum(m0[None, :] + n[active, None] * aa, MODEL_FLOOR)
        q = c[None, :] * aa / m
        d1 = tot[active] - q.sum(axis=1)
        d2 = (q * aa / m).sum(axis=1)
        step = np.where(d2 > 0, -d1 / np.maximum(d2, 1e-300), 0.0)
        new = np.maximum(n[active] + step, 0.0)
        done = np.abs(new - n[active]) <= 1e-7 * (1.0 + n[active])
        n[active] = new
        active = active[~done]
    pos = np.flatnonzero(n > 0)
    gain = np.zeros(a.shape[0])
    if pos.size:
        m = np.maximum(m0[None, :] + n[pos, None] * a[pos], MODEL_FLOOR)
        gain[pos] = 2.0 * ((c[None, :] * np.log(m / m0[None, :])).sum(axis=1) - n[pos] * tot[pos])
    return np.maximum(gain, 0.0), n


def base_at_counts(problem: DetectionProblem, base: list[np.ndarray]) -> list[np.ndarray]:
    """Base model values at the pixels with counts of every band."""
    return [img[d.iy, d.iz] for img, d in zip(base, problem.bands)]


def gain_at(
    problem: DetectionProblem, base: list[np.ndarray], y: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact gain of adding one source at each of the positions (y, z), on-axis PSF.

    Returns the gain (J,) summed over bands and the counts (J, B).
    """
    y = np.atleast_1d(np.asarray(y, float))
    z = np.atleast_1d(np.asarray(z, float))
    # Proposals use the on-axis PSF (lobster-eye PSFs vary slowly across the field);
    # the fits that follow take each source's own angle.
    theta = np.zeros(y.size)
    gain = np.zeros(y.size)
    counts = np.zeros((y.size, problem.n_bands))
    m0s = base_at_counts(problem, base)
    for b, data in enumerate(problem.bands):
        if data.c.size == 0:
            continue
        bt = problem.model.band_terms(b, y, z, theta)
        g, n = add_one_gain(bt.a_nz, bt.tot, data.c, m0s[b])
        gain += g
        counts[:, b] = n
    return gain, counts


def grid_profiles(problem: DetectionProblem, b: int, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-D PSF term profiles of trial sources at every pixel centre of the extended grid.

    Trial positions are the pixel centres of the grid extended by the margin on both
    sides; the fraction of term k in pixel l then depends only on ``l - j``, so one
    long profile per term (a source at a pixel centre, on-axis PSF) gives every trial
    position as a sliding window, without evaluating the PSF J times.  Cached per
    PSF, axis and grid.

    Returns
    -------
    positions : ndarray (J,)
        Trial coordinates along the axis.
    w : ndarray (K,)
        Term weights.
    f : ndarray (J, K, L)
        Fraction of term k of a source at ``positions[j]`` in pixel ``l`` of the axis.
    """
    edges = problem.y_edges if axis == 0 else problem.z_edges
    # Cached on the PSF object: the profiles depend only on the PSF and the grid, so a
    # Monte-Carlo of many images on one grid computes them once.
    cache = problem.psfs[b].__dict__.setdefault("_detect_grid_profiles", {})
    key = (axis, edges.size, float(edges[0]), problem.pixel, problem.margin)
    if key in cache:
        return cache[key]
    h = problem.pixel
    n_pix = edges.size - 1
    n_margin = int(np.ceil(problem.margin / h))
    d_min = -(n_pix + n_margin - 1)
    d_max = n_pix - 1 + n_margin
    long_edges = h * (np.arange(d_min, d_max + 2) - 0.5)
    if axis == 0:
        t = problem.psfs[b].terms(long_edges, _WIDE, [0.0], [0.0], 0.0)
        prof, w = t.fy[0], t.w[0]
    else:
        t = problem.psfs[b].terms(_WIDE, long_edges, [0.0], [0.0], 0.0)
        prof, w = t.fz[0], t.w[0]
    windows = np.lib.stride_tricks.sliding_window_view(prof, n_pix, axis=1)  # (K, J, L)
    f = np.ascontiguousarray(windows[:, ::-1, :].transpose(1, 0, 2))
    positions = edges[0] + h * (np.arange(-n_margin, n_pix + n_margin) + 0.5)
    cache[key] = (positions, w, f)
    return cache[key]


def _row_exposure(problem: DetectionProblem, axis: int) -> list[np.ndarray]:
    """Mean relative exposure of each row (axis 0) or column (axis 1), per band."""
    return [d.exposure.mean(axis=1 - axis) for d in problem.bands]


def projection_gain(problem: DetectionProblem, base: list[np.ndarray], axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Gain of one more source along one axis, from the 1-D projections of the images.

    The kernel of a trial source at coordinate ``u`` is the PSF marginal along the axis
    (the other axis integrated over the infinite line) times the mean exposure of each
    row; it ignores where the other coordinate lies, which only matters for sources
    far off the chip along it (their arm still makes a peak, at lower gain).  Trial
    positions are the pixel centres of the grid and of the margin.  Every position
    gets the score statistic (one Newton step from N = 0, summed over bands); the local
    maxima get the exact 1-D gain (:func:`add_one_gain`).

    Parameters
    ----------
    axis : 0 or 1
        0 for the y (RAWY-like) projection, 1 for z.

    Returns
    -------
    positions, gain : ndarray
    """
    rows = _row_exposure(problem, axis)
    score = None
    positions = None
    per_band = []
    for b, data in enumerate(problem.bands):
        positions, w, f = grid_profiles(problem, b, axis)
        if score is None:
            score = np.zeros(positions.size)
        usable = data.exposure > 0
        c = np.where(usable, data.counts, 0).sum(axis=1 - axis).astype(float)
        m0 = np.maximum(np.where(usable, base[b], 0.0).sum(axis=1 - axis), MODEL_FLOOR)
        kern = np.einsum("k,jkl->jl", w, f) * rows[b][None, :]
        keep = c > 0
        if not np.any(keep):
            continue
        a = kern[:, keep]
        tot = kern.sum(axis=1)
        s_b = a @ (c[keep] / m0[keep]) - tot
        i_b = (a * a) @ (c[keep] / m0[keep] ** 2)
        score += np.where(s_b > 0, s_b * s_b / np.maximum(i_b, 1e-300), 0.0)
        per_band.append((a, tot, c[keep], m0[keep]))
    if not per_band:
        return positions, score
    width = max(1, int(round(0.5 * problem.fwhm() / problem.pixel)))
    peaks = _local_maxima_1d(score, width, 0.0, 16)
    trial = np.unique(np.clip(np.r_[peaks, peaks - 1, peaks + 1], 0, positions.size - 1))
    gain = score.copy()
    exact = np.zeros(trial.size)
    for a, tot, c, m0 in per_band:
        g, _ = add_one_gain(a[trial], tot[trial], c, m0)
        exact += g
    gain[trial] = exact
    return positions, gain


def line_gain(
    problem: DetectionProblem,
    base: list[np.ndarray],
    fixed_axis: int,
    value: float,
    n_refine: int = 3,
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    """Best position along a line: one coordinate fixed at ``value``, the other scanned.

    Every trial position gets the score statistic ``S^2 / I`` (score and observed
    information of the new counts at N = 0, summed over bands), which needs one pass
    over the pixels with counts; the ``n_refine`` best local maxima then get the exact
    gain.  The PSF terms of the fixed coordinate are computed once and those of the
    scanned one come from :func:`grid_profiles` (trial positions at the pixel centres of
    the grid and the margin, on-axis PSF: the exact gain of the picks uses the PSF at
    their own off-axis angle).

    Returns
    -------
    best : float
        The scanned coordinate of the best position.
    gain : float
        Its exact gain.
    counts : ndarray (B,)
        Its counts per band.
    positions, score : ndarray
        The scanned positions and their score statistic.
    """
    scan_axis = 1 - fixed_axis
    score = None
    positions = None
    m0s = base_at_counts(problem, base)
    for b, data in enumerate(problem.bands):
        positions, w, f_scan = grid_profiles(problem, b, scan_axis)  # f_scan (J, K, L)
        if score is None:
            score = np.zeros(positions.size)
        if data.c.size == 0:
            continue
        psf = problem.psfs[b]
        if fixed_axis == 0:
            tf = psf.terms(problem.y_edges, _WIDE, [value], [0.0], 0.0)
            f_fixed = tf.fy[0]  # (K, ny)
            i_fixed, i_scan = data.iy, data.iz
            gfix = f_fixed @ data.exposure  # (K, nz): sum over y of g fy_k
        else:
            tf = psf.terms(_WIDE, problem.z_edges, [0.0], [value], 0.0)
            f_fixed = tf.fz[0]  # (K, nz)
            i_fixed, i_scan = data.iz, data.iy
            gfix = f_fixed @ data.exposure.T  # (K, ny)
        n_scan = f_scan.shape[2]
        # The new source's model at pixel p is g_p sum_k w_k F_k(fixed_p) f_jk(scan_p):
        # collapse the pixels onto their scanned coordinate once, then the score and
        # the information of every trial position are small matrix products.
        m0 = np.maximum(m0s[b], MODEL_FLOOR)
        fw = (w[:, None] * f_fixed[:, i_fixed]) * data.g_nz[None, :]  # (K, n)
        r1 = data.c / m0
        r2 = data.c / (m0 * m0)
        h1 = np.zeros((w.size, n_scan))
        for k in range(w.size):
            h1[k] = np.bincount(i_scan, weights=fw[k] * r1, minlength=n_scan)
        h2 = np.zeros((w.size, w.size, n_scan))
        for k in range(w.size):
            for k2 in range(k, w.size):
                h2[k, k2] = np.bincount(i_scan, weights=fw[k] * fw[k2] * r2, minlength=n_scan)
                h2[k2, k] = h2[k, k2]
        tot = np.einsum("kl,jkl->j", w[:, None] * gfix, f_scan)
        s_b = np.einsum("jkl,kl->j", f_scan, h1) - tot
        i_b = np.zeros(positions.size)
        for k in range(w.size):
            for k2 in range(k, w.size):
                pair = (f_scan[:, k, :] * f_scan[:, k2, :]) @ h2[k, k2]
                i_b += pair if k2 == k else 2.0 * pair
        score += np.where(s_b > 0, s_b * s_b / np.maximum(i_b, 1e-300), 0.0)
    width = max(1, int(round(0.5 * problem.fwhm() / problem.pixel)))
    picks = _local_maxima_1d(score, width, 0.0, n_refine)
    if picks.size == 0:
        picks = np.array([int(np.argmax(score))])
    # Exact gain at the picks and at their neighbours (the score is only a local guide).
    trial = np.unique(np.clip(np.r_[picks, picks - 1, picks + 1], 0, positions.size - 1))
    yy = np.full(trial.size, value) if fixed_axis == 0 else positions[trial]
    zz = positions[trial] if fixed_axis == 0 else np.full(trial.size, value)
    gain, counts = gain_at(problem, base, yy, zz)
    k = int(np.argmax(gain))
    return float(positions[trial[k]]), float(gain[k]), counts[k], positions, score


def _kernel(problem: DetectionProblem, b: int, half: int) -> np.ndarray:
    """Pixel fractions of a source at the centre of a (2 half + 1)^2 pixel box."""
    edges = problem.pixel * (np.arange(-half, half + 2) - 0.5)
    t = problem.psfs[b].terms(edges, edges, [0.0], [0.0], 0.0)
    return t.image(0)


def ts_map(problem: DetectionProblem, base: list[np.ndarray], half_width: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Score-test map of one more source at every pixel centre (all bands).

    For band b and a source of counts N at pixel x, the score at N = 0 is
    ``S_b(x) = sum_p (c_p / m0_p - 1) g_p P_b(p - x)`` and the expected information
    ``I_b(x) = sum_p g_p^2 P_b(p - x)^2 / m0_p``; ``S^2 / I`` is the gain of one Newton
    step from N = 0 (the score statistic), kept only where the score is positive
    (counts cannot be negative).  The PSF is truncated to a box of half-width
    ``half_width`` pixels (the spot and the inner arms, where the information lies):
    the map only proposes positions, which the exact gain then ranks.

    Returns
    -------
    ts : ndarray (ny, nz)
    counts : ndarray (B, ny, nz)
        One-step estimates of the counts per band.
    """
    ts = np.zeros(problem.shape)
    counts = np.zeros((problem.n_bands, *problem.shape))
    half = int(min(half_width, max(problem.shape) - 1))
    for b, data in enumerate(problem.bands):
        if data.c.size == 0:
            continue
        k = _kernel(problem, b, half)
        usable = data.exposure > 0
        m0 = np.maximum(base[b], MODEL_FLOOR)
        u = np.where(usable, (data.counts / m0 - 1.0) * data.exposure, 0.0)
        v = np.where(usable, data.exposure**2 / m0, 0.0)
        # Correlation with the kernel = convolution with the flipped kernel.
        s = fftconvolve_same(u, k[::-1, ::-1])
        info = fftconvolve_same(v, (k * k)[::-1, ::-1])
        info = np.maximum(info, 1e-300)
        pos = s > 0
        ts += np.where(pos, s * s / info, 0.0)
        counts[b] = np.where(pos, s / info, 0.0)
    return ts, counts


def fftconvolve_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``scipy.signal.fftconvolve(image, kernel, mode="same")`` for real 2-D arrays.

    The same algorithm (real FFTs of the full linear convolution at fast lengths, the
    centre cut out) written on :mod:`scipy.fft`: importing :mod:`scipy.signal` pulls in
    :mod:`scipy.stats`, a large share of the CLI start-up.
    """
    full = [a + b - 1 for a, b in zip(image.shape, kernel.shape)]
    fshape = [fft.next_fast_len(n, True) for n in full]
    spec = fft.rfftn(image, fshape) * fft.rfftn(kernel, fshape)
    out = fft.irfftn(spec, fshape)[tuple(slice(0, n) for n in full)]
    start = [(n - m) // 2 for n, m in zip(full, image.shape)]
    return out[tuple(slice(a, a + m) for a, m in zip(start, image.shape))].copy()


def _local_maxima_1d(values: np.ndarray, width: int, level: float, n_max: int) -> np.ndarray:
    peak = ndimage.maximum_filter1d(values, size=2 * width + 1, mode="nearest")
    idx = np.flatnonzero((values >= peak) & (values >= level))
    return idx[np.argsort(values[idx])[::-1]][:n_max]


def propose(
    problem: DetectionProblem,
    base: list[np.ndarray],
    *,
    level: float = 4.0,
    n_projection: int = 4,
    n_ts: int = 6,
    use_ts_map: bool = True,
    use_projections: bool = True,
) -> list[Candidate]:
    """Candidate positions for one more source, best gain first.

    Parameters
    ----------
    base : list of ndarray
        Dense base model per band (sources found so far + background).
    level : float
        Minimum gain of a 1-D peak or TS-map peak to be examined.
    n_projection : int
        Peaks of each 1-D projection gain examined (each gives one 2-D line scan).
    n_ts : int
        TS-map peaks examined.
    use_ts_map, use_projections : bool
        Which proposals to make.
    """
    width = max(1, int(round(0.5 * problem.fwhm() / problem.pixel)))
    found: list[Candidate] = []
    for axis in (0, 1) if use_projections else ():
        pos, gain = projection_gain(problem, base, axis)
        for i in _local_maxima_1d(gain, width, level, n_projection):
            other, g2, n2, _, _ = line_gain(problem, base, axis, pos[i])
            y, z = (pos[i], other) if axis == 0 else (other, pos[i])
            found.append(Candidate(float(y), float(z), g2, tuple(n2), f"projection-{'yz'[axis]}"))
    if use_ts_map:
        ts, _ = ts_map(problem, base)
        peak = ndimage.maximum_filter(ts, size=2 * width + 1, mode="nearest")
        iy, iz = np.nonzero((ts >= peak) & (ts >= level))
        order = np.argsort(ts[iy, iz])[::-1][:n_ts]
        if order.size:
            yy = problem.y_centres[iy[order]]
            zz = problem.z_centres[iz[order]]
            g, n = gain_at(problem, base, yy, zz)
            found += [Candidate(float(a), float(c), float(d), tuple(e), "ts-map") for a, c, d, e in zip(yy, zz, g, n)]
    found.sort(key=lambda cand: -cand.gain)
    return found
