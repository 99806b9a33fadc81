"""One BLAS thread while the pipeline's numerical code runs (the process's thread policy).

The detection's matrix products are small (a few sources x terms against a 256 x 256
exposure map, or a few amplitudes against the pixels with counts), and so are the
linear-algebra steps inside scipy's L-BFGS-B and the light curves' per-bin solves.
OpenBLAS splits them over threads that then wait on each other: measured on the 2-core
CI machine under load, the close-pair test of the ML stage took 18.6 s with the default
threads and 4.7 s with one, one L-BFGS-B iteration on 6 variables 0.4 ms instead of
0.03 ms, and the lightcurves brick spent 0.5 CPU-s more with the default threads.

:func:`single_blas_thread` limits every BLAS library loaded in the process (numpy's and
scipy's OpenBLAS, MKL, BLIS...) to one thread inside a block, through ``threadpoolctl``,
and restores the previous limits after.  It is applied around the core of every brick
(:meth:`mxt_pipeline.pipelines.brick.Brick.run`) and around the detection's entry
points, so one policy holds wherever the pipeline computes.  Nested blocks are free:
only the outermost one inspects the loaded libraries (about 1 ms).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["single_blas_thread", "one_blas_thread", "blas_threads"]

F = TypeVar("F", bound=Callable[..., Any])

_LOCK = threading.Lock()
_DEPTH = 0


def blas_threads() -> list[int]:
    """Thread counts of the BLAS libraries loaded in the process (for tests and reports)."""
    from threadpoolctl import threadpool_info

    return [int(info["num_threads"]) for info in threadpool_info() if info.get("user_api") == "blas"]


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the block with every BLAS library limited to one thread (nested blocks are free).

    The depth is per process, not per thread: BLAS thread counts are process-wide.
    """
    global _DEPTH
    limiter = None
    with _LOCK:
        outer = _DEPTH == 0
        _DEPTH += 1
        if outer:
            # Imported here (not at start-up): threadpoolctl inspects the libraries
            # loaded when the limit is taken, which are the ones to limit.
            from threadpoolctl import threadpool_limits

            try:
                limiter = threadpool_limits(limits=1, user_api="blas")
            except BaseException:
                _DEPTH -= 1
                raise
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if limiter is not None:
                limiter.restore_original_limits()


def one_blas_thread(func: F) -> F:
    """Decorator form of :func:`single_blas_thread`."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with single_blas_thread():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
