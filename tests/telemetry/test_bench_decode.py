"""Decoding speed of the telemetry: packets/s and MB/s, as a ratio to reading the same L1 from FITS.

The data are a 10 ks observation's worth of hits (two passes, 0.1 s frames, 1 to 3 hits
per frame: 100 000 frames, about 200 000 hits) and a 1 s attitude.  The reference is
reading the same passes and attitude from their L1 FITS files (``read_raw_hits``,
``read_attitude``), measured in the same run as CPU time.  ``benchmark.extra_info``
holds packets/s, MB/s and the ratio (decode time / FITS read time).  Run with
``tox -e bench``; by default the decoding runs once and its result is checked.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from astropy.table import Table

from mxt_pipeline.datamodel import GTI, Attitude, RawHits
from mxt_pipeline.io.products import read_attitude, read_raw_hits, write_attitude, write_raw_hits
from mxt_pipeline.io.telemetry_stream import read_packet_file, write_packet_file
from mxt_pipeline.telemetry.stream import decode_deliveries, encode_dumps

FT = 0.1
T0 = 3.0e8


def _pass(pass_id, t0, t1, rng):
    frames = np.arange(round(t0 / FT), round(t1 / FT))
    f = np.repeat(frames, rng.integers(1, 4, frames.size))
    table = Table({"TIME": f * FT, "FRAME": (f - frames[0]).astype(np.int32),
                   "RAWY": rng.integers(0, 256, f.size).astype(np.int16),
                   "RAWZ": rng.integers(0, 256, f.size).astype(np.int16),
                   "PHA": rng.integers(0, 4000, f.size).astype(np.int16)})  # fmt: skip
    return RawHits(table, gti=GTI([t0], [t1]), meta={"OBS_ID": "BENCH", "PASS_ID": pass_id, "STATION": "GS",
                                                     "FRAMETIM": FT})  # fmt: skip


def _cpu(fn, repeat=2):
    best = np.inf
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_tm")
    rng = np.random.default_rng(1)
    passes = [_pass(1, T0, T0 + 5000.0, rng), _pass(2, T0 + 5000.0, T0 + 10000.0, rng)]
    t = np.arange(T0, T0 + 10000.0, 1.0)
    att = Attitude.from_pointing(t, np.full(t.size, 10.0), np.full(t.size, 20.0), np.zeros(t.size))
    att.meta["OBS_ID"] = "BENCH"
    dumps = encode_dumps(passes, att)
    tm = [write_packet_file(root / f"p{k}.dat", v) for k, v in sorted(dumps.items())]
    l1 = [write_raw_hits(root / f"l1_{p.meta['PASS_ID']}.fits", p) for p in passes]
    write_attitude(root / "att.fits", att)
    return passes, tm, l1, root / "att.fits"


def test_bench_decode_against_fits(benchmark, files):
    passes, tm, l1, att = files

    def decode():
        return decode_deliveries([read_packet_file(f) for f in tm])

    def fits():
        return [read_raw_hits(f) for f in l1], read_attitude(att)

    out = benchmark.pedantic(decode, rounds=2, iterations=1)
    assert [len(p) for p in out.passes] == [len(p) for p in passes]
    assert np.array_equal(out.passes[1]["PHA"], passes[1]["PHA"])
    t_tm, _ = _cpu(decode)
    t_fits, _ = _cpu(fits)
    n, size = out.report.packets_read, out.report.bytes_read
    benchmark.extra_info.update({
        "packets": n, "megabytes": size / 1e6, "packets_per_s": n / t_tm, "mb_per_s": size / 1e6 / t_tm,
        "decode_cpu_s": t_tm, "fits_read_cpu_s": t_fits, "ratio_decode_to_fits": t_tm / t_fits,
    })  # fmt: skip
    # Decoding works packet by packet in Python; FITS reading is columnar.  The goal that
    # matters is the end-to-end share (reports/examples/telemetry_decoding.md); here only a
    # gross regression fails (a generous bound on the measured ratio).
    assert t_tm / t_fits < 200
