"""Selection speed on a mission-size index, cached in memory versus re-read per query.

A real mission index is large (NuSTAR's ``caldb.indx`` has 894 rows).  The local
backend keeps the parsed index in memory and re-reads it only when the file changes;
the reference is the naive client that reads ``caldb.indx`` for every query.  The
ratio (reference / cached) is stored in ``benchmark.extra_info``; the assertion only
asks the cache to be worth having (at least 3x, with a generous margin on the
measured factor).  Run with ``tox -e bench``; by default the query runs once and the
test checks its result and the ratio.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np

from mxt_pipeline.caldb import CaDBIO, CifRow, quzcif, read_cif, write_cif
from mxt_pipeline.caldb.select import CaldbQuery

N_ROWS = 900
CODENAMES = ("TELDEF", "PSF", "EFFAREA", "VIGNET", "MATRIX", "CTI", "GAINOFF", "MULTIPLICITY", "BADPIX",
             "PATTERN", "SYSERR")  # fmt: skip


def big_index(root):
    rng = np.random.default_rng(3)
    rows = []
    for i in range(N_ROWS):
        cnam = CODENAMES[i % len(CODENAMES)]
        d = date(2024, 1, 1) + timedelta(days=int(rng.integers(0, 900)))
        lo = float(rng.integers(0, 10))
        rows.append(CifRow(
            telescop="SVOM", instrume="MXT", cal_cnam=cnam, cal_dir=f"data/svom/mxt/bcf/{cnam.lower()}",
            cal_file=f"{cnam.lower()}_{i:04d}.fits", cal_vsd=d.isoformat(),
            cal_cbd=(f"ENERGY({lo:g}-{lo + 1:g})keV", "THETA(0-30)arcmin"), cal_xno=1,
            cal_qual=int(rng.random() < 0.2) * 5, cal_date="2025-01-01",
        ))  # fmt: skip
    path = write_cif(rows, root / "data/svom/mxt/caldb.indx")
    return path, rows


def _best(fn, repeat=5):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def test_bench_cached_selection(benchmark, tmp_path):
    path, rows = big_index(tmp_path)
    client = CaDBIO(caldb=tmp_path)
    kw = {"date": "2025-06-01", "expr": "energy.eq.4.5.and.theta.le.10"}
    expected = quzcif(rows, "SVOM", "MXT", "PSF", **kw)
    client.entries("MXT", "psf", **kw)  # warm the cache

    got = benchmark(lambda: client.entries("MXT", "psf", **kw))
    assert [e.row for e in got] == expected

    query = CaldbQuery("SVOM", "MXT", "PSF", **kw)

    def naive():
        return quzcif(read_cif(path), query.telescop, query.instrume, query.codename, **kw)

    assert naive() == expected
    t_ref = _best(naive, 3)
    t_cached = _best(lambda: client.entries("MXT", "psf", **kw), 5)
    ratio = t_ref / t_cached
    benchmark.extra_info.update(
        {"rows": N_ROWS, "reference_s": t_ref, "cached_s": t_cached, "speedup_vs_reread": ratio}
    )
    assert ratio > 3.0, f"cached selection only {ratio:.1f}x faster than re-reading the index"
