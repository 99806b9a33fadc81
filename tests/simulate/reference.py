"""Plain per-photon reference implementations (loops), for the benchmark and cross-checks.

Written independently of the vectorised kernels: one Python iteration per photon and
per pixel, ``math.erf`` for the charge cloud, a dict for the frame accumulation, and a
PSF drawn by the cumulative distribution of ``PSFModel.pixel_fractions`` on a grid of
sub-pixels around the source (grid-CDF sampling).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from mxt_pipeline.simulate.detector import hash_normal, pixel_key


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def reference_respond(det, frame, rawy, rawz, charge, energy, salt, min_share=1e-3):
    """Per-photon loop of the detector response (no noise-only hits): sorted hit tuples
    ``(FRAME, RAWY, RAWZ, PHA)`` of the telemetered pixels."""
    acc: dict[tuple[int, int, int], float] = defaultdict(float)
    for f, y, z, q, e in zip(frame.tolist(), rawy.tolist(), rawz.tolist(), charge.tolist(), energy.tolist()):
        s = float(det.sigma_um(np.array([e]))[0]) / 75.0
        iy, iz = math.floor(y + 0.5), math.floor(z + 0.5)
        fy, fz = y - iy, z - iz
        cy = [_cdf((-0.5 - fy) / s), _cdf((0.5 - fy) / s)]
        cz = [_cdf((-0.5 - fz) / s), _cdf((0.5 - fz) / s)]
        py = [cy[0], cy[1] - cy[0], 1.0 - cy[1]]
        pz = [cz[0], cz[1] - cz[0], 1.0 - cz[1]]
        for a in range(3):
            for b in range(3):
                share = q * py[a] * pz[b]
                yy, zz = iy + a - 1, iz + b - 1
                if share >= min_share and 0 <= yy < 256 and 0 <= zz < 256:
                    acc[(f, yy, zz)] += share
    out = []
    for (f, y, z) in sorted(acc):
        q = acc[(f, y, z)]
        q += det.read_noise_kev * float(hash_normal(pixel_key(np.array([f]), np.array([y]), np.array([z])), salt)[0])
        q = max(q, 0.0)
        e_cti = float(det.cti_apply(np.array([q]), np.array([z]))[0])
        pha = int(min(max(round(float(det.to_pha(np.array([e_cti]), np.array([y]))[0])), 0), 16383))
        if pha - det.offset_adu[y] >= det.onboard_threshold_kev * 1000.0 / det.gain_ev_adu[y] and not det.masked[y, z]:
            out.append((f, y, z, pha))
    return out


def reference_psf_sample(psf, energy, theta, rng, half_width=48, oversample=2):
    """One PSF offset per photon by the CDF of ``pixel_fractions`` on a sub-pixel grid
    of +-``half_width`` pixels (photons beyond the grid are not representable)."""
    edges = np.arange(-half_width * oversample, half_width * oversample + 1) / oversample
    centres = 0.5 * (edges[1:] + edges[:-1])
    out = np.empty((len(energy), 2))
    for i, (e, t) in enumerate(zip(energy, theta)):
        frac = np.asarray(psf.pixel_fractions(edges, edges, 0.0, 0.0, float(e), float(t)), dtype=float)
        cdf = np.cumsum(frac.ravel())
        k = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
        k = min(k, cdf.size - 1)
        out[i] = centres[k // centres.size] + (rng.random() - 0.5) / oversample, \
            centres[k % centres.size] + (rng.random() - 0.5) / oversample
    return out[:, 0], out[:, 1]


def numpy_reference_respond(det, frame, rawy, rawz, charge, energy, salt, min_share=1e-3):
    """The detector response written the plain numpy way (the benchmark's numpy reference).

    One pass over all photons with ``(n, 9)`` temporaries, the 3 x 3 fractions from
    ``ndtr`` differences, the frame accumulation by ``np.unique(return_inverse)`` and
    ``np.bincount`` (the same order of additions as the kernel's stable sort, so the
    sums are bit-identical), then the same read noise, CTI, gain/offset and threshold.
    Returns sorted hit tuples ``(FRAME, RAWY, RAWZ, PHA)``.
    """
    from scipy.special import ndtr

    y = np.asarray(rawy, dtype=float)
    z = np.asarray(rawz, dtype=float)
    q = np.asarray(charge, dtype=float)
    s = np.asarray(det.sigma_um(np.asarray(energy, dtype=float)), dtype=float) / 75.0
    iy, iz = np.floor(y + 0.5), np.floor(z + 0.5)
    cuts = np.array([-0.5, 0.5])
    cy = ndtr((cuts[None, :] - (y - iy)[:, None]) / s[:, None])
    cz = ndtr((cuts[None, :] - (z - iz)[:, None]) / s[:, None])
    py = np.stack([cy[:, 0], cy[:, 1] - cy[:, 0], 1.0 - cy[:, 1]], axis=1)
    pz = np.stack([cz[:, 0], cz[:, 1] - cz[:, 0], 1.0 - cz[:, 1]], axis=1)
    share = q[:, None, None] * py[:, :, None] * pz[:, None, :]
    off = np.array([-1, 0, 1])
    yy = (iy.astype(np.int64)[:, None, None] + off[None, :, None]) + np.zeros((1, 1, 3), np.int64)
    zz = (iz.astype(np.int64)[:, None, None] + off[None, None, :]) + np.zeros((1, 3, 1), np.int64)
    ff = np.broadcast_to(np.asarray(frame, dtype=np.int64)[:, None, None], share.shape)
    keep = (share >= min_share) & (yy >= 0) & (yy < 256) & (zz >= 0) & (zz < 256)
    key = (ff[keep] * 256 + yy[keep]) * 256 + zz[keep]
    ukey, inv = np.unique(key, return_inverse=True)
    total = np.bincount(inv, weights=share[keep])
    f, py_, pz_ = ukey // 65536, (ukey // 256) % 256, ukey % 256
    total = np.maximum(total + det.read_noise_kev * hash_normal(pixel_key(f, py_, pz_), salt), 0.0)
    e_cti = det.cti_apply(total, pz_)
    pha = np.clip(np.rint(det.to_pha(e_cti, py_)), 0, 16383).astype(np.int64)
    ok = (pha - det.offset_adu[py_]) >= det.onboard_threshold_kev * 1000.0 / det.gain_ev_adu[py_]
    ok &= ~det.masked[py_, pz_]
    return list(zip(f[ok].tolist(), py_[ok].tolist(), pz_[ok].tolist(), pha[ok].tolist()))
