"""The exact (Clopper-Pearson) interval of a binomial proportion: the one copy the package uses.

Campaign reports, the detection acceptance study and the harness's ensemble checks all
judge proportions (R90 coverage, detection efficiency) with it.  The interval comes from
scipy (:meth:`scipy.stats.binomtest(...).proportion_ci <scipy.stats.BinomTestResult.proportion_ci>`
with ``method="exact"``).  With no trial (``n = 0``) nothing is known about the
proportion and the interval is the whole ``[0, 1]``; with ``k = 0`` its lower end is 0 and
with ``k = n`` its upper end is 1, as Clopper & Pearson (1934) define them.
"""

from __future__ import annotations

from scipy import stats

from mxt_pipeline.errors import MXTInputError

__all__ = ["clopper_pearson"]


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval of the proportion ``k / n`` at confidence ``level``.

    Parameters
    ----------
    k : int
        Successes, ``0 <= k <= n``.
    n : int
        Trials, ``n >= 0``; ``n = 0`` gives ``(0.0, 1.0)``.
    level : float
        Confidence level, in (0, 1).

    Returns
    -------
    (float, float)
        Lower and upper ends.

    Raises
    ------
    MXTInputError
        ``k`` or ``n`` out of range, or ``level`` outside (0, 1).
    """
    k, n, level = int(k), int(n), float(level)
    if n < 0 or not 0 <= k <= max(n, 0):
        raise MXTInputError(f"a binomial interval needs 0 <= k <= n, got k={k}, n={n}")
    if not 0.0 < level < 1.0:
        raise MXTInputError(f"the confidence level must lie in (0, 1), got {level}")
    if n == 0:
        return 0.0, 1.0
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)
