"""A plain per-frame reference implementation of the calibration core.

Straightforward and independent of the pipeline's kernels: one Python iteration per
frame; in each frame the hits are painted into a 256 x 256 image, grouped with
``scipy.ndimage.label`` (8-connectivity), and each group is classified from the set of
its pixel offsets (:func:`linegen.epic_pattern`).  Energies use ``cti.correct``
directly (no table), coordinates use scipy rotations from ``Attitude.rotation``.
It is the oracle of the reconstruction tests and the baseline of the throughput
benchmark.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mxt_pipeline import constants as C
from mxt_pipeline import geometry as co

from .linegen import epic_pattern

_EIGHT = np.ones((3, 3), dtype=int)


def reference_events(frame, rawy, rawz, energy, split, primary):
    """Events as a list of (frame, main_y, main_z, pattern, multiplicity, hit indices)."""
    frame = np.asarray(frame)
    out = []
    order = np.argsort(frame, kind="stable")
    bounds = np.flatnonzero(np.r_[True, frame[order][1:] != frame[order][:-1], True])
    for s, e in zip(bounds[:-1], bounds[1:]):
        idx = order[s:e]
        idx = idx[energy[idx] >= split]
        if idx.size == 0:
            continue
        img = np.zeros((C.N_PIX, C.N_PIX), dtype=bool)
        img[rawy[idx], rawz[idx]] = True
        lab, n = ndimage.label(img, structure=_EIGHT)
        hit_lab = lab[rawy[idx], rawz[idx]]
        for k in range(1, n + 1):
            members = idx[hit_lab == k]
            # Brightest; ties to the smallest (RAWY, RAWZ), the pipeline's key order.
            best = max(members, key=lambda i: (energy[i], -int(rawy[i]), -int(rawz[i])))
            if energy[best] < primary:
                continue
            offs = {(int(rawy[i] - rawy[best]), int(rawz[i] - rawz[best])) for i in members}
            pattern = 13 if len(members) > 4 else epic_pattern(offs)
            out.append((int(frame[idx[0]]), int(rawy[best]), int(rawz[best]), pattern, len(members), sorted(members.tolist())))
    return out


def reference_chain(hits, attitude, calset, split, primary, ra_nom, dec_nom):
    """Per-frame reference of reconstruction + calibration + coordinates.

    Returns a dict of per-event arrays (TIME, RAWY, RAWZ, PATTERN, MULTIPLICITY,
    ENERGY, RA, DEC, X, Y) ordered by frame then by first hit.
    """
    pha = np.asarray(hits["PHA"], dtype=float)
    y = np.asarray(hits["RAWY"])
    z = np.asarray(hits["RAWZ"])
    e_hit = calset.cti.correct(calset.gainoff.to_energy(pha, y), z)
    evs = reference_events(np.asarray(hits["FRAME"]), y, z, e_hit, split, primary)
    rows = {k: [] for k in ("TIME", "RAWY", "RAWZ", "PATTERN", "MULTIPLICITY", "ENERGY", "RA", "DEC", "X", "Y")}
    last_frame, rot = None, None
    for fr, my, mz, pat, mult, members in evs:
        m = np.asarray(members)
        t = hits["TIME"][m[0]]
        if fr != last_frame:
            rot = attitude.rotation(np.array([t]))
            last_frame = fr
        es = e_hit[m].sum()
        yc = (e_hit[m] * y[m]).sum() / es
        zc = (e_hit[m] * z[m]).sum() / es
        energy = calset.multiplicity.correct(np.array([es]), np.array([min(mult, 4)]))[0]
        dy, dz = calset.teldef.raw_to_det(np.array([yc]), np.array([zc]))
        v = co.angles_to_vectors(*calset.teldef.det_to_angles(dy, dz))
        ra, dec = co.vectors_to_radec(rot.apply(v))
        x, yy = co.radec_to_sky(ra, dec, ra_nom, dec_nom)
        values = {"TIME": t, "RAWY": my, "RAWZ": mz, "PATTERN": pat, "MULTIPLICITY": mult,
                  "ENERGY": energy, "RA": ra[0], "DEC": dec[0], "X": x[0], "Y": yy[0]}  # fmt: skip
        for k, val in values.items():
            rows[k].append(val)
    return {k: np.asarray(v) for k, v in rows.items()}
