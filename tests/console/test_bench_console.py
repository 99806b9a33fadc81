"""Page rendering of the console on a root of 1,000 runs, against a cold scan of the root.

The runs page lists every run of the root (1,000 here, each with its source list read
from a FITS file once).  A published collection never changes, so the console keeps
their summaries in memory and a page view only lists the folders again; the reference
is the same page served by a console that has just started (nothing cached yet: every
manifest, report and source list read).  Times are CPU seconds of the process
(``time.process_time``: the server's threads included), best of the rounds; the ratio
reference / cached goes to ``benchmark.extra_info`` with the absolute times.

Acceptance (issue 17): a page renders in under 300 ms for 1,000 runs.  With
``tox -e bench`` the test runs on 1,000 runs and asserts it, with the ratio (at least
3x); by default (benchmarks disabled) it runs on 200 runs, best of three, and checks the ratio.
"""

from __future__ import annotations

import gc
import time
import warnings

from mxt_pipeline.caldb.service.auth import TokenSet
from mxt_pipeline.console.app import ConsoleConfig, create_app
from mxt_pipeline.console.auth import OperatorTokens
from tests.console.conftest import TOKEN
from tests.console.fakeroot import make_root

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _cpu(fn, repeat: int) -> float:
    # Best of the rounds, each after a full collection with the collector paused: deep in
    # a long test session one generation-2 collection of the whole heap costs more than
    # the page itself, and would be charged to whichever request triggered it.
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            t0 = time.process_time()
            fn()
            best = min(best, time.process_time() - t0)
        finally:
            gc.enable()
    return best


def _client(root) -> TestClient:
    return TestClient(create_app(ConsoleConfig(root, OperatorTokens(TokenSet([TOKEN])), reports=None)))


def test_bench_runs_page(benchmark, tmp_path):
    n_runs = 200 if benchmark.disabled else 1000
    rounds = 3 if benchmark.disabled else 5
    root = make_root(tmp_path / "root", n_runs, seed=11)
    with _client(root) as client:

        def runs_page():
            r = client.get("/", headers=AUTH)
            assert r.status_code == 200
            return r.text

        html = runs_page()  # warm the summaries
        assert html.count('class="obs"') == n_runs
        out = benchmark.pedantic(runs_page, rounds=rounds, iterations=1)
        assert out == html  # same page, from the cache
        cached = _cpu(runs_page, rounds)
        filtered = _cpu(lambda: client.get("/?status=PARTIAL&sort=r90&order=asc", headers=AUTH), rounds)
        key = "obs00007/" + next(p.name for p in (root / "obs00007").iterdir() if p.name.startswith("xband"))
        run_page = _cpu(lambda: client.get(f"/run/{key}", headers=AUTH), rounds)
        api = _cpu(lambda: client.get("/api/runs", headers=AUTH), rounds)

    def cold_page():  # a console that just started: nothing cached
        with _client(root) as fresh:
            assert fresh.get("/", headers=AUTH).status_code == 200

    cold = _cpu(cold_page, 1 if benchmark.disabled else 2)
    ratio = cold / cached
    benchmark.extra_info.update(
        n_runs=n_runs, runs_page_cpu_s=cached, filtered_page_cpu_s=filtered, run_page_cpu_s=run_page,
        api_runs_cpu_s=api, cold_runs_page_cpu_s=cold, cold_over_cached=ratio,
    )  # fmt: skip
    print(benchmark.extra_info)
    assert ratio > 3.0, benchmark.extra_info
    if not benchmark.disabled:
        assert max(cached, filtered, run_page) < 0.3, benchmark.extra_info
