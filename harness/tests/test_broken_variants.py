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
from harness.results import CheckResult, Status


@pytest.fixture(scope="module")
def clean_replays(tmp_path_factory):
    """Clean replay of each (golden dataset, brick) the variants use, made once."""
    cache: dict[tuple[str, str], list] = {}

    def get(variant, golden, config):
        key = (variant.golden, variant.brick)
        if key not in cache:
            _, checks = broken.verdict(variant, golden, config, tmp_path_factory.mktemp("clean"))
            cache[key] = checks
        return cache[key]

    return get


@pytest.mark.parametrize("variant", broken.VARIANTS, ids=lambda v: v.name)
def test_broken_variant_is_caught(variant, config, monkeypatch, tmp_path, clean_replays):
    store = GoldenStore(repo_root() / "golden", config=config)
    if variant.golden not in store.names():
        msg = f"golden dataset {variant.golden} not made yet"
        if config.golden.get("required"):
            pytest.fail(msg)
        pytest.skip(msg)
    golden = store.path(variant.golden)
    # The clean code passes on this golden set (so the failure below is the variant's).
    clean = clean_replays(variant, golden, config)
    assert clean and all(c.status == Status.PASS for c in clean), [c.line() for c in clean]
    variant.apply(monkeypatch)
    ok, checks = broken.verdict(variant, golden, config, tmp_path / "broken")
    assert ok, f"{variant} not caught as described: " + " / ".join(c.line()[:300] for c in checks)


def test_every_variant_names_an_existing_brick_and_dataset(config):
    """The variants stay in step with the pipelines and the declared golden datasets."""
    from mxt_pipeline.pipelines.registry import get_pipeline

    sets = config.golden.get("sets") or {}
    for v in broken.VARIANTS:
        assert v.golden in sets, v
        spec = sets[v.golden]
        bricks = [b.name for b in get_pipeline(spec["pipeline"], telemetry=spec.get("telemetry") is not None).bricks]
        assert v.brick in bricks, (v, bricks)


def test_caught_requires_brick_and_quantity():
    v = broken.VARIANTS[0]
    named = CheckResult("replay", "x/calibrate", Status.FAIL, "brick calibrate: f.fits: differs in [EVENTS] ENERGY, PI")
    other_brick = CheckResult("replay", "x/detect", Status.FAIL, "brick detect: f.fits: differs in [EVENTS] ENERGY")
    other_qty = CheckResult("replay", "x/calibrate", Status.FAIL, "brick calibrate: f.fits: differs in [EVENTS] PI")
    passing = CheckResult("replay", "x/calibrate", Status.PASS, "brick calibrate: ENERGY identical")
    assert broken.caught(v, [named, other_brick, other_qty, passing]) == [named]
