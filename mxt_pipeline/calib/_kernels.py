"""Compiled (numba) kernels of the calibration chain.

Why compiled code here (project rule: numba only where a loop is unavoidable and
measured to matter): grouping hits into events is a union-find over a neighbour graph,
a sequential algorithm.  The vectorised numpy formulation in :mod:`.patterns`
(shifted-array neighbour search + min-label propagation + bincount reductions) reached
1.4 million hits per second on one core of the development machine (AMD EPYC, 2 cores,
numpy 2.4), against the 5 Mhit/s requirement for reconstruction, calibration and
coordinates together; the single-pass kernel below does the reconstruction at roughly
ten times that rate (figures in ``docs/calibration.md``).  Likewise the per-event
attitude interpolation and sky transforms of :mod:`.coordinates` cost about 450 ns per
event in numpy (scipy's Slerp alone 1.2 us per distinct time), and are fused here.

Both kernels give results identical to the numpy implementations (tests compare them),
which remain the reference and the fallback when numba is not installed.
"""

from __future__ import annotations

import os

import numpy as np

try:  # numba is optional: the numpy implementations are used without it.
    import numba

    # MXT_NO_NUMBA=1 forces the numpy implementations (to test the fallback).
    HAVE_NUMBA = not os.environ.get("MXT_NO_NUMBA")
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    HAVE_NUMBA = False

__all__ = ["HAVE_NUMBA", "reconstruct_sorted", "event_sums", "rotate_and_project", "splitmix_uniform", "table_interp"]

#: Padded frame width of the pixel keys (see patterns.pixel_keys).
_W = 258


def _njit(*args, **kwargs):
    if HAVE_NUMBA:
        return numba.njit(*args, cache=True, nogil=True, **kwargs)

    def wrap(f):  # pragma: no cover
        return f

    return wrap


@_njit
def _find(parent, i):
    # Path halving.
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@_njit
def reconstruct_sorted(key, e, split, primary, table, invalid):
    """Events of hits sorted by key (see :func:`mxt_pipeline.calib.patterns.reconstruct`).

    Parameters: ``key`` strictly increasing pixel keys, ``e`` hit energies, thresholds,
    ``table`` the 512-entry pattern table, ``invalid`` the invalid pattern code.

    Returns ``(event_of_hit, main_hit, multiplicity, pattern, n_below_split,
    n_below_primary)`` with the same meaning and order as the numpy implementation:
    events numbered in the order of their first hit, the brightest hit of an event
    being its first in key order among equal energies.
    """
    n = key.size
    parent = np.arange(n)
    n_below_split = 0
    # Union of each hit with its forward 8-neighbours (key offsets 1, W-1, W, W+1).
    for i in range(n):
        if e[i] < split:
            n_below_split += 1
            continue
        ki = key[i]
        lim = ki + _W + 1
        j = i + 1
        while j < n and key[j] <= lim:
            d = key[j] - ki
            if (d == 1 or d >= _W - 1) and e[j] >= split:
                ri = _find(parent, i)
                rj = _find(parent, j)
                if ri != rj:
                    # The smaller index is the root: a component's root is its first hit.
                    if ri < rj:
                        parent[rj] = ri
                    else:
                        parent[ri] = rj
            j += 1
    # Component ids in order of first hit; per-component reductions.
    comp = np.full(n, -1, dtype=np.int64)
    n_comp = 0
    for i in range(n):
        if e[i] < split:
            continue
        r = _find(parent, i)
        if r == i:
            comp[i] = n_comp
            n_comp += 1
        else:
            comp[i] = comp[r]
    mult = np.zeros(n_comp, dtype=np.int64)
    main = np.full(n_comp, -1, dtype=np.int64)
    emax = np.full(n_comp, -np.inf)
    for i in range(n):
        c = comp[i]
        if c < 0:
            continue
        mult[c] += 1
        if e[i] > emax[c]:
            emax[c] = e[i]
            main[c] = i
    mask = np.zeros(n_comp, dtype=np.int64)
    far = np.zeros(n_comp, dtype=np.bool_)
    for i in range(n):
        c = comp[i]
        if c < 0:
            continue
        m = main[c]
        km = key[m]
        ym = (km // _W) % _W
        zm = km % _W
        ki = key[i]
        dy = (ki // _W) % _W - ym
        dz = ki % _W - zm
        if -1 <= dy <= 1 and -1 <= dz <= 1:
            mask[c] |= 1 << ((dy + 1) * 3 + (dz + 1))
        else:
            far[c] = True
    # Primary threshold and final numbering.
    new_id = np.full(n_comp, -1, dtype=np.int64)
    n_ev = 0
    for c in range(n_comp):
        if emax[c] >= primary:
            new_id[c] = n_ev
            n_ev += 1
    main_out = np.empty(n_ev, dtype=np.int64)
    mult_out = np.empty(n_ev, dtype=np.int64)
    pat_out = np.empty(n_ev, dtype=np.int16)
    for c in range(n_comp):
        k = new_id[c]
        if k < 0:
            continue
        main_out[k] = main[c]
        mult_out[k] = mult[c]
        if far[c] or mult[c] > 4:
            pat_out[k] = invalid
        else:
            pat_out[k] = table[mask[c]]
    event_of_hit = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        c = comp[i]
        if c >= 0:
            event_of_hit[i] = new_id[c]
    return event_of_hit, main_out, mult_out, pat_out, n_below_split, n_comp - n_ev


@_njit
def event_sums(event_of_hit, n_events, e, y, z, pha):
    """Per event: sum of E, of E*RAWY, of E*RAWZ and of PHA over its hits (one pass)."""
    esum = np.zeros(n_events)
    eys = np.zeros(n_events)
    ezs = np.zeros(n_events)
    psum = np.zeros(n_events)
    for i in range(event_of_hit.size):
        k = event_of_hit[i]
        if k < 0:
            continue
        esum[k] += e[i]
        eys[k] += e[i] * y[i]
        ezs[k] += e[i] * z[i]
        psum[k] += pha[i]
    return esum, eys, ezs, psum


@_njit
def rotate_and_project(
    ang_y, ang_z, times, t_att, quats, p0, e0, n0, sky_scale, ref_pix
):
    """RA, Dec (deg) and sky X, Y of instrument off-axis angles, event by event.

    The attitude quaternion (x, y, z, w; instrument -> ICRS) of each event is the
    spherical linear interpolation between the samples around its time (times clamped
    to the sampled span; at least two samples), on the shorter arc - the rotation
    scipy's Slerp gives.  Then the instrument vector of the angles (arcmin) is rotated
    to ICRS, converted to RA/Dec and projected on the tangent plane (``p0, e0, n0``).
    Events come sorted in time, so the sample interval is found by a moving pointer
    (with a binary search when a time goes backwards or jumps far).
    """
    n = ang_y.size
    m_att = t_att.size
    seg_ptr = 0
    ra = np.empty(n)
    dec = np.empty(n)
    x_out = np.empty(n)
    y_out = np.empty(n)
    arcmin = np.pi / (180.0 * 60.0)
    deg = 180.0 / np.pi
    last_seg = -1
    last_frac = np.nan
    m00 = m01 = m02 = m10 = m11 = m12 = m20 = m21 = m22 = 0.0
    for i in range(n):
        t = min(max(times[i], t_att[0]), t_att[m_att - 1])
        if t < t_att[seg_ptr] or (seg_ptr + 2 < m_att and t >= t_att[seg_ptr + 2]):
            seg_ptr = np.searchsorted(t_att, t, side="right") - 1
        while seg_ptr + 2 < m_att and t >= t_att[seg_ptr + 1]:
            seg_ptr += 1
        seg_ptr = min(max(seg_ptr, 0), m_att - 2)
        s = seg_ptr
        f = (t - t_att[s]) / (t_att[s + 1] - t_att[s])
        if s != last_seg or f != last_frac:
            # Events of one frame share (seg, frac): rebuild the matrix only on change.
            ax, ay, az, aw = quats[s, 0], quats[s, 1], quats[s, 2], quats[s, 3]
            bx, by, bz, bw = quats[s + 1, 0], quats[s + 1, 1], quats[s + 1, 2], quats[s + 1, 3]
            dot = ax * bx + ay * by + az * bz + aw * bw
            if dot < 0.0:
                bx, by, bz, bw, dot = -bx, -by, -bz, -bw, -dot
            if dot > 0.9999999:
                wa = 1.0 - f
                wb = f
            else:
                th = np.arccos(dot)
                st = np.sin(th)
                wa = np.sin((1.0 - f) * th) / st
                wb = np.sin(f * th) / st
            qx = wa * ax + wb * bx
            qy = wa * ay + wb * by
            qz = wa * az + wb * bz
            qw = wa * aw + wb * bw
            nq = 1.0 / np.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
            qx *= nq
            qy *= nq
            qz *= nq
            qw *= nq
            m00 = 1.0 - 2.0 * (qy * qy + qz * qz)
            m01 = 2.0 * (qx * qy - qz * qw)
            m02 = 2.0 * (qx * qz + qy * qw)
            m10 = 2.0 * (qx * qy + qz * qw)
            m11 = 1.0 - 2.0 * (qx * qx + qz * qz)
            m12 = 2.0 * (qy * qz - qx * qw)
            m20 = 2.0 * (qx * qz - qy * qw)
            m21 = 2.0 * (qy * qz + qx * qw)
            m22 = 1.0 - 2.0 * (qx * qx + qy * qy)
            last_seg = s
            last_frac = f
        ty = np.tan(ang_y[i] * arcmin)
        tz = np.tan(ang_z[i] * arcmin)
        inv = 1.0 / np.sqrt(1.0 + ty * ty + tz * tz)
        vx = inv
        vy = ty * inv
        vz = tz * inv
        wx = m00 * vx + m01 * vy + m02 * vz
        wy = m10 * vx + m11 * vy + m12 * vz
        wz = m20 * vx + m21 * vy + m22 * vz
        r = np.arctan2(wy, wx) * deg
        if r < 0.0:
            r += 360.0
        if r >= 360.0:
            r -= 360.0
        ra[i] = r
        dec[i] = np.arctan2(wz, np.sqrt(wx * wx + wy * wy)) * deg
        den = wx * p0[0] + wy * p0[1] + wz * p0[2]
        if den > 0.0:
            x_out[i] = ref_pix - (wx * e0[0] + wy * e0[1] + wz * e0[2]) / den / sky_scale
            y_out[i] = ref_pix + (wx * n0[0] + wy * n0[1] + wz * n0[2]) / den / sky_scale
        else:
            x_out[i] = np.nan
            y_out[i] = np.nan
    return ra, dec, x_out, y_out


@_njit
def splitmix_uniform(key):
    """Uniform numbers in [-0.5, 0.5) from int64 keys (same values as energy.adc_dither)."""
    out = np.empty(key.size)
    for i in range(key.size):
        x = np.uint64(key[i]) + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
        out[i] = np.float64(x >> np.uint64(11)) * (1.0 / 9007199254740992.0) - 0.5
    return out


@_njit
def table_interp(e, z, table, step):
    """CTIInverseTable.__call__ in one loop (identical arithmetic)."""
    n_nodes = table.shape[1]
    out = np.empty(e.size)
    inv_step = 1.0 / step
    for i in range(e.size):
        ei = e[i]
        f = min(np.sqrt(max(ei, 0.0)) * inv_step, n_nodes - 1.0)
        k = min(int(f), n_nodes - 2)
        w = f - k
        lo = table[z[i], k]
        out[i] = ei * (lo + w * (table[z[i], k + 1] - lo))
    return out
