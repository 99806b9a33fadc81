"""The BLAS thread policy: one thread inside, the previous limits restored after, nesting."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mxt_pipeline.detect import blas


def test_single_thread_inside_and_restored_after():
    np.ones((4, 4)) @ np.ones((4, 4))  # numpy's BLAS is loaded
    if not blas.blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can control")
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas.blas_threads()
        assert max(before) == 2
        with blas.single_blas_thread():
            assert set(blas.blas_threads()) == {1}
            with blas.single_blas_thread():
                assert set(blas.blas_threads()) == {1}
            assert set(blas.blas_threads()) == {1}
        assert blas.blas_threads() == before


def test_limits_restored_when_the_block_raises():
    np.ones((4, 4)) @ np.ones((4, 4))
    if not blas.blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can control")
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas.blas_threads()
        with pytest.raises(RuntimeError), blas.single_blas_thread():
            raise RuntimeError("boom")
        assert blas.blas_threads() == before
        # The depth went back to 0: a new block limits again.
        with blas.single_blas_thread():
            assert set(blas.blas_threads()) == {1}


def test_decorator_keeps_the_result():
    @blas.one_blas_thread
    def f(x):
        return x + 1

    assert f(1) == 2 and f.__name__ == "f"


def test_brick_core_runs_on_one_blas_thread(tmp_path):
    # The policy is applied where every brick runs: a core sees one thread, and the
    # limits are back after the brick.
    from mxt_pipeline.pipelines.brick import Brick

    np.ones((4, 4)) @ np.ones((4, 4))
    if not blas.blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can control")
    seen = []

    def core(inputs, params, cal):
        seen.append(blas.blas_threads())
        return {}

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas.blas_threads()
        Brick("b", "b", core).run_standalone({}, out_dir=tmp_path)
        assert blas.blas_threads() == before
    assert seen and set(seen[0]) == {1}
