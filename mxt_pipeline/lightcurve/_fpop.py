"""Compiled kernels of the exact Bayesian-blocks programme for the ``events`` fitness.

Why compiled code here (project rule: numba only where a loop is unavoidable and
measured to matter): the optimal-partition recursion of Scargle et al. (2013) is
sequential by nature (the optimum up to cell ``R`` needs every optimum before it), and
the functional pruning below updates a small envelope one cell after the other.  The
same code run by the Python interpreter (``MXT_NO_NUMBA=1``, the fallback when numba is
absent) takes 1.6 s for 1e4 events against 0.02 s compiled, about 70 times slower
(development machine, figures in ``docs/lightcurves.md``).

The problem (derivation in :mod:`mxt_pipeline.lightcurve.bayesian_blocks`): with cell
edge coordinates ``E`` (increasing), cumulative counts ``S`` and the cost
``F(R+1) = min_k F(k) + ncp - N ln(N/T)`` of the best partition of cells ``0..R``
(``N = S[R+1] - S[k]``, ``T = E[R+1] - E[k]``), the candidate start ``k`` of the last
block is the function of the rate ``lam`` ::

    h_k(lam) = F(k) + S[k] - lam E[k] + S[k] ln(lam)

and a last block from ``k`` to ``R`` costs
``ncp - S[R+1] + min_lam [h_k(lam) + lam E[R+1] - S[R+1] ln(lam)]``.  Functional pruning
(FPOP, Maidstone et al. 2017, Statistics and Computing 27, 519) keeps the lower
envelope ``min_k h_k`` as pieces of the rate axis, each owned by the candidate that is
smallest there.  A new candidate ``j`` differs from an older ``k`` by
``h_j - h_k = a - b lam + c ln(lam)`` (``b > 0``, ``c >= 0``), a concave function, so
inside each piece ``j`` takes at most a prefix and a suffix; the split points are roots
of ``mu - ln(mu) = 1 + w`` (Lambert W), found by Newton iterations.  The envelope is
usually a dozen pieces long, so each cell costs a constant amount of work.

Exactness.  A candidate that owns no piece is dropped only when *every* piece's owner
beats it by more than a margin bounding the rounding errors (of its cost, of the
owner's, and of one more evaluation); otherwise it is kept as a *shadow* (a near-tie)
and re-examined at the next cell (its margins only grow, as the envelope only goes
down).  Each cell then hands over the candidates whose value is within the error
bounds of the best one; the caller evaluates their fitness with numpy's arithmetic, the
operations astropy performs, and :func:`dp_select` takes the first maximum, so that
near-ties resolve as astropy resolves them.
"""

from __future__ import annotations

import math
import os

import numpy as np

try:  # numba is optional: without it the same code runs (slowly) in Python.
    import numba

    # MXT_NO_NUMBA=1 runs the kernels in the interpreter (to test the fallback).
    HAVE_NUMBA = not os.environ.get("MXT_NO_NUMBA")
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    HAVE_NUMBA = False

__all__ = ["HAVE_NUMBA", "FpopState", "fpop_scan", "dp_select", "lower_root", "upper_root"]

#: Relative widening of the survival intervals: keeps them conservative (never
#: narrower than the exact ones) despite the rounding of the root iterations.
_WIDEN = 1e-12


def _njit(func):
    """Compile ``func`` with numba when available, else return it unchanged."""
    if HAVE_NUMBA:
        return numba.njit(func, cache=True, nogil=True)
    return func


@_njit
def _newton_log_root(y, w, tol):
    """Newton on ``psi(y) = e^y - y - 1 - w`` from a start where ``psi > 0``.

    ``psi`` is convex, so from either side of a root every iterate stays on that side
    (a bound) and the steps shrink monotonically; stops when a step is below ``tol``.
    """
    for _ in range(50):
        em = math.expm1(y)
        if em == 0.0:
            break
        psi = em - y - w
        if psi <= 0.0:
            break
        step = psi / em
        y -= step
        if abs(step) <= tol:
            break
    return y


@_njit
def lower_root(w):
    """Lower bound of the root ``mu < 1`` of ``mu - ln(mu) = 1 + w`` (``w >= 0``).

    Returns ``(mu, ln(mu))``.  Newton's method on ``psi(y) = e^y - y - 1 - w`` with
    ``y = ln(mu)`` (convex and decreasing for ``y < 0``) started left of the root stays
    left of it, so every iterate is a lower bound.  The start is the larger of two
    analytic lower bounds: ``y = -(1 + w)`` (from ``mu = exp(mu - 1 - w) > exp(-1 - w)``)
    and ``ln(1 - sqrt(2 w))`` (from ``mu - 1 - ln(mu) >= (1 - mu)^2 / 2`` for ``mu <= 1``).
    ``expm1`` keeps full precision near the double root at ``w = 0``.
    """
    if w > 30.0:
        # mu < exp(-30): y = -(1 + w) + mu is -(1 + w) to 1e-13 (a lower bound).
        y = -(1.0 + w)
        return math.exp(y), y
    y = -(1.0 + w)
    sq = math.sqrt(2.0 * w)
    if sq < 1.0:
        y = max(y, math.log1p(-sq))
    y = _newton_log_root(y, w, 1e-13 * (1.0 - y))  # steps < 0: y rises to the root
    return math.exp(y), y


@_njit
def upper_root(w):
    """Upper bound of the root ``mu > 1`` of ``mu - ln(mu) = 1 + w`` (``w >= 0``).

    Returns ``(mu, ln(mu))``.  Newton on ``psi(y) = e^y - y - 1 - w`` (``y = ln(mu) > 0``,
    convex and increasing) from the right of the root, each iterate an upper bound,
    started at the smaller of ``mu = 1 + w + ln(2 + 2 w)`` (from ``ln(mu) <= mu / 2``) and
    ``mu = 1 + w + sqrt(w (2 + w))`` (from ``ln(mu) <= (mu^2 - 1) / (2 mu)``, ``mu >= 1``).
    """
    y = math.log1p(min(w + math.log(2.0 + 2.0 * w), w + math.sqrt(w * (2.0 + w))))
    y = _newton_log_root(y, w, 1e-13 * (1.0 + y))  # steps > 0: y falls to the root
    return math.exp(y), y


@_njit
def _diff_at(da, de, ds, x, lx):
    """``da - de x + ds ln(x)`` with its limits at ``x = 0`` and ``x = inf`` (``de != 0``)."""
    if x == 0.0:
        if ds > 0.0:
            return -np.inf
        if ds < 0.0:
            return np.inf
        return da
    if x == np.inf:
        return -np.inf if de > 0.0 else np.inf
    return da - de * x + ds * lx


@_njit
def _min_margin(k, o, A, E, S, x0, lx0, x1, lx1):
    """Smallest ``h_k - h_o`` over the rates ``[x0, x1]``.

    ``h_k - h_o = (A_k - A_o) - lam (E_k - E_o) + (S_k - S_o) ln(lam)`` is concave when
    ``k`` is the later candidate (minimum at an end) and convex otherwise (minimum at
    its stationary point when inside, else at an end).
    """
    da = A[k] - A[o]
    de = E[k] - E[o]
    ds = S[k] - S[o]
    m0 = _diff_at(da, de, ds, x0, lx0)
    m1 = _diff_at(da, de, ds, x1, lx1)
    m = min(m0, m1)
    if k < o and ds < 0.0:
        xc = ds / de  # both negative: the stationary point of the convex difference
        if x0 < xc < x1:
            m = min(m, da - de * xc + ds * math.log(xc))
    return m


@_njit
def _emit(nbo, nbx, nblx, Q, owner, x, lx):
    """Append the piece ending at ``x`` owned by ``owner`` to the new envelope (extending
    the last piece when it has the same owner); return the new piece count."""
    if Q > 0 and nbo[Q - 1] == owner:
        nbx[Q] = x
        nblx[Q] = lx
        return Q
    nbo[Q] = owner
    nbx[Q + 1] = x
    nblx[Q + 1] = lx
    return Q + 1


@_njit
def _scan(E, S, ncp, rho_max, r_start, r_stop, A, F, epsF, live, nlive, npieces,
          bx, blx, bo, npiece, nbx, nblx, nbo, tv, te, ptr, idx):
    """Advance the pruned programme over cells ``r_start..r_stop-1`` (see fpop_scan)."""
    cap = idx.shape[0]
    pcap = bo.shape[0]
    u = 2.220446049250313e-16
    inf = np.inf
    pos = 0
    ptr[0] = 0
    r = r_start
    P = npiece
    while r < r_stop:
        if pos + nlive + 1 > cap or 3 * P + 4 > pcap:
            break
        # ---- add candidate j = r: it takes the rates where it is strictly better
        j = r
        A[j] = F[j] + S[j]
        Aj = A[j]
        Ej = E[j]
        Sj = S[j]
        if P == 0:
            nbx[0] = 0.0
            nblx[0] = -inf
            nbx[1] = inf
            nblx[1] = inf
            nbo[0] = j
            Q = 1
        else:
            Q = 0
            nbx[0] = 0.0
            nblx[0] = -inf
            for p in range(P):
                k = bo[p]
                x0 = bx[p]
                x1 = bx[p + 1]
                lx0 = blx[p]
                lx1 = blx[p + 1]
                # g = h_j - h_k = a - b lam + c ln(lam), concave: k keeps {g >= 0}.
                a = Aj - A[k]
                b = Ej - E[k]
                c = Sj - S[k]
                g0 = _diff_at(a, b, c, x0, lx0)
                g1 = _diff_at(a, b, c, x1, lx1)
                # Split points (and their logarithms): k owns [s1, s2] inside the piece.
                s1 = x0
                ls1 = lx0
                s2 = x1
                ls2 = lx1
                whole_j = False
                if g0 >= 0.0 and g1 >= 0.0:
                    pass  # g >= 0 on the whole piece (concave): unchanged
                elif c > 0.0:
                    lam = c / b
                    loglam = math.log(lam)
                    gmax = a - c + c * loglam
                    if gmax <= 0.0 or (g0 < 0.0 and g1 < 0.0 and not (x0 < lam < x1)):
                        whole_j = True
                    else:
                        w = gmax / c
                        if g0 < 0.0:
                            mu, lmu = lower_root(w)
                            s1 = lam * mu
                            ls1 = loglam + lmu
                        if g1 < 0.0:
                            mu, lmu = upper_root(w)
                            s2 = lam * mu
                            ls2 = loglam + lmu
                        if not (s1 < s2):
                            whole_j = True
                else:
                    # No count between k and j: g linear, k keeps lam <= a / b.
                    if a <= 0.0:
                        whole_j = True
                    else:
                        s2 = a / b
                        ls2 = math.log(s2)
                        if not (s1 < s2):
                            whole_j = True
                if whole_j:
                    s1 = x1
                    ls1 = lx1
                    s2 = x1
                    ls2 = lx1
                # Emit [x0, s1) -> j, [s1, s2] -> k, (s2, x1] -> j, merging equal owners.
                if s1 > x0:
                    Q = _emit(nbo, nbx, nblx, Q, j, s1, ls1)
                if s2 > s1:
                    Q = _emit(nbo, nbx, nblx, Q, k, s2, ls2)
                if x1 > s2:
                    Q = _emit(nbo, nbx, nblx, Q, j, x1, lx1)
        # ---- swap in the new envelope and count the pieces of each candidate
        for i in range(nlive):
            npieces[live[i]] = 0
        npieces[j] = 0
        for p in range(Q):
            bx[p] = nbx[p]
            blx[p] = nblx[p]
            bo[p] = nbo[p]
            npieces[nbo[p]] += 1
        bx[Q] = nbx[Q]
        blx[Q] = nblx[Q]
        P = Q
        # ---- candidates owning no rate: dropped when beaten everywhere by more than
        # the error margin (their margin over the envelope only grows later), else kept
        # as shadows (near-ties).
        m = 0
        for i in range(nlive):
            k = live[i]
            keep = True
            if npieces[k] == 0:
                keep = False
                for p in range(P):
                    o = bo[p]
                    margin = _min_margin(k, o, A, E, S, bx[p], blx[p], bx[p + 1], blx[p + 1])
                    if not (margin > epsF[k] + epsF[o] + rho_max):
                        keep = True
                        break
            if keep:
                live[m] = k
                m += 1
        live[m] = j
        nlive = m + 1
        # ---- optimum up to cell r over every live candidate
        Ep = E[r + 1]
        Sp = S[r + 1]
        best = inf
        ibest = 0
        for i in range(nlive):
            k = live[i]
            n = Sp - S[k]
            fv = 0.0
            lnr = 0.0
            if n > 0.0:
                lnr = math.log(n / (Ep - E[k]))
                fv = n * lnr
            v = F[k] + ncp - fv
            # Bound on the difference between this value and astropy's: the error of
            # F[k], then ln(N/T) within u + 4u|ln r| and three roundings, on both sides.
            tv[i] = v
            te[i] = epsF[k] + 4.0 * (
                6.0 * u * n * (1.0 + abs(lnr)) + u * (abs(fv) + abs(ncp) + abs(v))
            )
            if v < best:
                best = v
                ibest = i
        # Astropy's maximum is at a candidate whose value here is within the two error
        # bounds of the best one: only those are handed over, and the error of F[r + 1]
        # is the worst of theirs.
        eb = te[ibest]
        err = eb
        for i in range(nlive):
            if tv[i] <= best + eb + te[i]:
                idx[pos] = live[i]
                pos += 1
                if te[i] > err:
                    err = te[i]
        F[r + 1] = best
        epsF[r + 1] = err
        r += 1
        ptr[r - r_start] = pos
    return r, nlive, P


class FpopState:
    """Candidates and envelope of the pruned programme, carried from chunk to chunk.

    Parameters
    ----------
    n : int
        Number of cells.
    """

    def __init__(self, n: int, piece_capacity: int = 1024) -> None:
        #: Per cell k: F[k] + S[k], the constant of candidate k's function.
        self.A = np.zeros(n + 1)
        #: Cost of the best partition of cells 0..R-1 (pruned programme), F[0] = 0.
        self.F = np.zeros(n + 1)
        #: Bound on |F[R] + best_astropy[R - 1]| (rounding of both computations).
        self.epsF = np.zeros(n + 1)
        self.live = np.zeros(n + 1, dtype=np.int64)
        self.nlive = 0
        self.npieces = np.zeros(n + 1, dtype=np.int64)
        self.tv = np.zeros(n + 1)
        self.te = np.zeros(n + 1)
        self.npiece = 0
        self.max_live = 0
        self.max_pieces = 0
        self.bx = np.zeros(piece_capacity + 1)
        self.blx = np.zeros(piece_capacity + 1)
        self.bo = np.zeros(piece_capacity, dtype=np.int64)
        self.nbx = np.zeros(piece_capacity + 1)
        self.nblx = np.zeros(piece_capacity + 1)
        self.nbo = np.zeros(piece_capacity, dtype=np.int64)

    def grow_pieces(self) -> None:
        """Double the capacity of the envelope arrays, keeping the envelope."""
        cap = 2 * self.bo.size
        for name in ("bx", "blx", "nbx", "nblx"):
            new = np.zeros(cap + 1)
            old = getattr(self, name)
            new[: old.size] = old
            setattr(self, name, new)
        for name in ("bo", "nbo"):
            new = np.zeros(cap, dtype=np.int64)
            old = getattr(self, name)
            new[: old.size] = old
            setattr(self, name, new)


def fpop_scan(
    E: np.ndarray,
    S: np.ndarray,
    ncp: float,
    rho_max: float,
    r_start: int,
    r_stop: int,
    state: FpopState,
    ptr: np.ndarray,
    idx: np.ndarray,
) -> int:
    """Run the pruned programme from cell ``r_start`` until ``r_stop`` or a full buffer.

    Parameters
    ----------
    E : ndarray, shape (n + 1,)
        Increasing cell-edge coordinates (``T = E[R+1] - E[k]``).
    S : ndarray, shape (n + 1,)
        Cumulative counts, ``S[0] = 0``.
    ncp : float
        Penalty per block.
    rho_max : float
        Bound on the rounding error of one evaluation of the objective of a block
        (added, with the error bounds of the two candidates, to every pruning test).
    r_start, r_stop : int
        Cells to process.
    state : FpopState
        Candidates and envelope, updated in place.
    ptr, idx : ndarray of int64
        Output: for cell ``r_start + i`` the candidates that may be optimal are
        ``idx[ptr[i]:ptr[i + 1]]`` (ascending).  ``ptr`` needs ``r_stop - r_start + 1``
        slots.

    Returns
    -------
    int
        The first cell not processed (``r_stop`` unless a buffer filled up).
    """
    if 3 * state.npiece + 4 > state.bo.size:
        state.grow_pieces()
    r_end, nlive, npiece = _scan(
        E, S, float(ncp), float(rho_max), int(r_start), int(r_stop), state.A, state.F,
        state.epsF, state.live, int(state.nlive), state.npieces, state.bx,
        state.blx, state.bo, int(state.npiece), state.nbx, state.nblx, state.nbo, state.tv,
        state.te, ptr, idx,
    )  # fmt: skip
    state.nlive = int(nlive)
    state.npiece = int(npiece)
    state.max_live = max(state.max_live, int(nlive))
    state.max_pieces = max(state.max_pieces, int(npiece))
    return int(r_end)


@_njit
def dp_select(r_start, r_end, ptr, idx, fvm, best, last):
    """Exact recursion over the retained candidates of cells ``r_start..r_end-1``.

    ``fvm[p]`` is the fitness minus the prior of the block ``idx[p]..R``, computed with
    the same floating-point operations as astropy; the value of candidate ``k`` is
    ``fvm + best[k - 1]`` (``fvm`` alone for ``k = 0``), and the first maximum wins, as
    ``numpy.argmax`` picks it.  Floating-point addition and comparison are the same
    IEEE operations compiled or not, so ``best`` matches astropy's bit for bit.
    """
    for r in range(r_start, r_end):
        p0 = ptr[r - r_start]
        p1 = ptr[r - r_start + 1]
        arg = -1
        bmax = 0.0
        for p in range(p0, p1):
            k = idx[p]
            v = fvm[p] if k == 0 else fvm[p] + best[k - 1]
            if arg < 0 or v > bmax:
                bmax = v
                arg = k
        best[r] = bmax
        last[r] = arg
