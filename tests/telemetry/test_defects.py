"""Each downlink defect is injected and found in the report, and lost time leaves the GTI."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from mxt_pipeline.datamodel import GTI, Attitude, RawHits
from mxt_pipeline.errors import MXTFormatError, MXTInputError
from mxt_pipeline.telemetry.downlink import DownlinkDefects, downlink
from mxt_pipeline.telemetry.packets import APID_SCIENCE, parse_packet, parse_science
from mxt_pipeline.telemetry.stream import decode_deliveries, deliveries_from_mapping, encode_dumps
from tests.telemetry.helpers import assert_same_attitude, assert_same_pass

FT = 0.1


def _pass(pass_id: int, t0: float, t1: float, seed: int) -> RawHits:
    rng = np.random.default_rng(seed)
    frames = np.arange(round(t0 / FT), round(t1 / FT))
    n = rng.integers(1, 4, frames.size)  # every frame has hits: loss is seen frame by frame
    f = np.repeat(frames, n)
    table = Table({"TIME": f * FT, "FRAME": f.astype(np.int32), "RAWY": rng.integers(0, 256, f.size).astype(np.int16),
                   "RAWZ": rng.integers(0, 256, f.size).astype(np.int16),
                   "PHA": rng.integers(0, 4000, f.size).astype(np.int16)})
    return RawHits(table, gti=GTI([t0], [t1]), meta={"OBS_ID": "T1", "PASS_ID": pass_id, "STATION": "GS", "FRAMETIM": FT})


@pytest.fixture(scope="module")
def observation():
    passes = [_pass(1, 1000.0, 1100.0, 1), _pass(2, 1100.0, 1200.0, 2)]
    t = np.arange(1000.0, 1200.0, 1.0)
    att = Attitude.from_pointing(t, np.full(t.size, 10.0), np.full(t.size, 20.0), np.full(t.size, 30.0))
    return passes, att, encode_dumps(passes, att)


def _run(dumps, seed=7, **kw):
    deliveries, truth = downlink(dumps, DownlinkDefects(**kw), np.random.default_rng(seed))
    return decode_deliveries([deliveries[k] for k in sorted(deliveries)]), truth


def test_no_defect_is_identity(observation):
    passes, att, dumps = observation
    out, truth = _run(dumps)
    for a, b in zip(passes, out.passes, strict=True):
        assert_same_pass(a, b)
    assert_same_attitude(att, out.attitude)
    assert truth.lost == truth.duplicated == truth.corrupted == truth.moved == 0


def test_duplicates_across_passes_are_removed(observation):
    passes, att, dumps = observation
    out, truth = _run(dumps, overlap_packets=40)
    assert truth.duplicated == 40
    r = out.report
    assert (r.duplicated, r.missing, r.corrupted) == (40, 0, 0)
    assert r.packets_read == r.kept + r.duplicated
    for a, b in zip(passes, out.passes, strict=True):
        assert_same_pass(a, b)  # the re-sent packets go back to their own dump


def test_reordering_is_counted_and_undone(observation):
    passes, att, dumps = observation
    out, truth = _run(dumps, reorder_rate=0.05)
    assert truth.moved > 0 and out.report.reordered > 0
    assert out.report.reordered <= truth.moved
    assert (out.report.missing, out.report.duplicated, out.report.corrupted) == (0, 0, 0)
    for a, b in zip(passes, out.passes, strict=True):
        assert_same_pass(a, b)
    assert_same_attitude(att, out.attitude)


def _science_lost_times(dumps, truth):
    times = []
    for x in truth.lost_packets:
        p = parse_packet(dumps[x["dump"]][x["index"]])
        if p.apid == APID_SCIENCE:
            times.append(parse_science(p.data).time)
    return np.array(times)


def test_loss_is_counted_and_becomes_lost_time(observation):
    passes, att, dumps = observation
    out, truth = _run(dumps, loss_rate=0.02)
    r = out.report
    assert truth.lost > 5
    assert r.missing == truth.lost and r.packets_read == r.kept
    assert r.expected == sum(len(v) for v in dumps.values())
    lost_t = _science_lost_times(dumps, truth)
    assert lost_t.size > 0
    for orig, dec in zip(passes, out.passes, strict=True):
        # Every frame lost is outside the decoded GTI; every frame received whole is inside.
        mine = lost_t[orig.gti.contains(lost_t)]
        assert not dec.gti.contains(mine).any()
        kept = np.setdiff1d(np.unique(orig["TIME"]), mine)
        assert dec.gti.contains(kept).all()
        assert np.isclose(orig.gti.exposure - dec.gti.exposure, mine.size * FT)
    assert np.isclose(r.lost_time_s, lost_t.size * FT)


def test_corruption_is_detected(observation):
    passes, att, dumps = observation
    out, truth = _run(dumps, corrupt_rate=2e-4)
    r = out.report
    assert truth.corrupted > 5
    assert r.corrupted == truth.corrupted
    assert r.missing == truth.corrupted  # no other copy: each corrupted packet is missing
    assert r.packets_read == r.kept + r.corrupted
    r.check()


def test_all_defects_add_up(observation):
    passes, att, dumps = observation
    out, truth = _run(dumps, seed=3, loss_rate=0.01, overlap_packets=30, reorder_rate=0.02, corrupt_rate=1e-4)
    r = out.report
    r.check()
    assert r.packets_read == sum(len(v) for v in dumps.values()) + truth.duplicated - truth.lost
    assert r.corrupted == truth.corrupted
    assert r.lost_intervals and all(x["stop"] > x["start"] for x in r.lost_intervals)


def test_lost_housekeeping_of_a_dump(observation):
    passes, att, dumps = observation
    cut = {1: dumps[1][1:-1], 2: dumps[2]}
    out = decode_deliveries(deliveries_from_mapping(cut))
    assert out.report.dumps_without_housekeeping == [1]
    assert out.passes[0].meta["STATION"] == "UNKNOWN"
    assert out.report.missing == 2
    assert np.array_equal(out.passes[0]["PHA"], passes[0]["PHA"])


def test_nothing_described_is_an_error(observation):
    passes, att, dumps = observation
    with pytest.raises(MXTFormatError, match="housekeeping"):
        decode_deliveries([dumps[1][1:-1]])


def test_bad_defect_rate():
    with pytest.raises(MXTInputError, match="loss_rate"):
        DownlinkDefects(loss_rate=1.5)
