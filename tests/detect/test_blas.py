"""The BLAS thread limiter restores the thread count and nests."""

from __future__ import annotations

import pytest

from mxt_pipeline.detect import blas


def test_single_thread_inside_and_restored_after():
    funcs = blas._openblas()
    if funcs is None:
        pytest.skip("numpy's BLAS is not an OpenBLAS reachable here")
    setter, getter = funcs
    before = int(getter())
    with blas.single_blas_thread():
        assert int(getter()) == 1
        with blas.single_blas_thread():
            assert int(getter()) == 1
        assert int(getter()) == 1
    assert int(getter()) == before


def test_decorator_keeps_the_result():
    @blas.one_blas_thread
    def f(x):
        return x + 1

    assert f(1) == 2 and f.__name__ == "f"
