"""Deliberately broken variants of the real pipeline: each must fail the harness with a
message naming the brick and the quantity (issue item 7).

Each variant (:data:`harness.broken.VARIANTS`) is applied by monkeypatching the science
code exactly where a real bug would sit; :func:`harness.broken.verdict` replays the
brick on its golden dataset.
The variants need the golden datasets: while they do not exist the tests skip (or fail
when the configuration declares them required).
"""

from __future__ import annotations

import pytest

from harness import broken
from harness.config import repo_root
from harness.golden import GoldenStore


@pytest.mark.parametrize("variant", broken.VARIANTS, ids=lambda v: v.name)
def test_broken_variant_is_caught(variant, config, monkeypatch, tmp_path):
    store = GoldenStore(repo_root() / "golden", config=config)
    if variant.golden not in store.names():
        msg = f"golden dataset {variant.golden} not made yet"
        if config.golden.get("required"):
            pytest.fail(msg)
        pytest.skip(msg)
    golden = store.path(variant.golden)
    # The clean code passes on this golden set (so the failure below is the variant's).
    ok_before, clean = broken.verdict(variant, golden, config, tmp_path / "clean")
    assert not ok_before and all(not c.failed for c in clean), [c.line() for c in clean]
    variant.apply(monkeypatch)
    ok, checks = broken.verdict(variant, golden, config, tmp_path / "broken")
    assert ok, f"{variant} not caught as described: " + " / ".join(c.line()[:300] for c in checks)
