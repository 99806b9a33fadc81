"""Merging passes: duplicates, order independence, drops and their reasons, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.calib.ingest import merge_passes
from mxt_pipeline.datamodel import GTI, RawHits
from mxt_pipeline.errors import MXTInputError

FT = 0.1


def _frames(rng, f0, f1, per_frame=3):
    """Hits of frames f0..f1-1, deterministic from the rng."""
    frames = np.repeat(np.arange(f0, f1), per_frame)
    key = np.unique(frames * 65536 + rng.integers(0, 65536, frames.size))
    f = key // 65536
    return {
        "TIME": 1000.0 + f * FT,
        "FRAME": f,
        "RAWY": (key % 65536) // 256,
        "RAWZ": key % 256,
        "PHA": rng.integers(100, 3000, key.size),
    }


def _pass(cols, pid, sel=None, gti=None):
    if sel is not None:
        cols = {k: v[sel] for k, v in cols.items()}
    t = cols["TIME"]
    gti = gti or GTI([t.min() if t.size else 0.0], [(t.max() + FT) if t.size else 0.0])
    return RawHits(cols, gti=gti, meta={"OBS_ID": "OBS1", "PASS_ID": pid, "FRAMETIM": FT, "FILE": f"p{pid}.fits"})


def _all(rng, n_frames=60):
    return _frames(rng, 0, n_frames)


def _tables_equal(a, b):
    for c in ("TIME", "FRAME", "RAWY", "RAWZ", "PHA"):
        np.testing.assert_array_equal(a[c], b[c])


def test_overlapping_passes_deduplicated():
    rng = np.random.default_rng(1)
    cols = _all(rng)
    f = cols["FRAME"]
    p1 = _pass(cols, 1, f < 40)
    p2 = _pass(cols, 2, f >= 30)  # frames 30-39 twice
    merged, rep = merge_passes([p2, p1])
    _tables_equal(merged, _pass(cols, 9))
    assert rep.n_duplicate_frames == 10 and rep.n_conflicting_frames == 0
    assert rep.dropped["duplicate_frame"] == np.count_nonzero((f >= 30) & (f < 40))
    assert rep.n_hits_kept == f.size and rep.n_frames_kept == 60
    assert rep.pass_ids == [1, 2] and rep.files == ["p1.fits", "p2.fits"]
    assert merged.gti == GTI([1000.0], [1006.0])


def test_truncated_copy_loses_to_the_complete_one():
    rng = np.random.default_rng(2)
    cols = _all(rng, 20)
    f = cols["FRAME"]
    full = _pass(cols, 2)
    # Pass 1 (lower id) holds frame 5 with one hit missing: the complete copy wins.
    sel = np.ones(f.size, bool)
    sel[np.flatnonzero(f == 5)[0]] = False
    cut = _pass(cols, 1, sel & (f <= 5))
    merged, rep = merge_passes([cut, full])
    _tables_equal(merged, full)
    assert rep.n_conflicting_frames == 1 and rep.n_duplicate_frames == 6


@given(order=st.permutations([0, 1, 2, 3]), seed=st.integers(0, 10_000))
def test_merge_independent_of_pass_order(order, seed):
    rng = np.random.default_rng(seed)
    cols = _all(rng)
    f = cols["FRAME"]
    bounds = [(0, 25), (20, 45), (40, 60), (10, 15)]
    passes = [_pass(cols, pid, (f >= lo) & (f < hi)) for pid, (lo, hi) in zip((4, 7, 1, 3), bounds)]
    ref, rep_ref = merge_passes(passes)
    got, rep = merge_passes([passes[i] for i in order])
    _tables_equal(ref, got)
    _tables_equal(got, _pass(cols, 9))
    assert ref.gti == got.gti
    assert rep.to_dict() == rep_ref.to_dict()


def test_drops_are_counted_with_their_reason():
    rng = np.random.default_rng(4)
    cols = _all(rng, 10)
    cols = {k: v.copy() for k, v in cols.items()}
    cols["RAWY"][0] = 300
    n = cols["TIME"].size
    # A duplicated pixel in frame 9 and a hit outside the pass GTI.
    extra = {k: np.r_[v, v[-1]] for k, v in cols.items()}
    gti = GTI([1000.0], [1000.85])  # frame 9 (t = 1000.9) outside
    merged, rep = merge_passes([_pass(extra, 1, gti=gti)])
    n9 = int(np.count_nonzero(cols["FRAME"] == 9))
    assert rep.dropped["outside_detector"] == 1
    assert rep.dropped["outside_coverage"] == n9 + 1
    assert rep.dropped["duplicate_pixel"] == 0
    assert rep.n_hits_kept == n - 1 - n9
    merged, rep = merge_passes([_pass(extra, 1)])
    assert rep.dropped["duplicate_pixel"] == 1


def test_errors():
    rng = np.random.default_rng(5)
    cols = _all(rng, 5)
    with pytest.raises(MXTInputError, match="no L1"):
        merge_passes([])
    other = _pass(cols, 2)
    other.meta["OBS_ID"] = "OBS2"
    with pytest.raises(MXTInputError, match="different observations"):
        merge_passes([_pass(cols, 1), other])
    with pytest.raises(MXTInputError, match="duplicate PASS_ID"):
        merge_passes([_pass(cols, 1), _pass(cols, 1)])
    slow = _pass(cols, 3)
    slow.meta["FRAMETIM"] = 0.2
    with pytest.raises(MXTInputError, match="frame times"):
        merge_passes([_pass(cols, 1), slow])
    back = {k: v.copy() for k, v in cols.items()}
    back["TIME"][back["FRAME"] == 4] -= 1.0
    with pytest.raises(MXTInputError, match="TIME decreases") as err:
        merge_passes([_pass(back, 1, gti=GTI([990.0], [1010.0]))])
    assert err.value.column == "TIME"


def test_empty_pass():
    empty = RawHits(None, gti=GTI([0.0], [10.0]), meta={"OBS_ID": "E", "PASS_ID": 1})
    merged, rep = merge_passes([empty])
    assert len(merged) == 0 and rep.n_hits_kept == 0 and merged.gti.exposure == 10.0


@pytest.mark.parametrize(("column", "value", "dropped"),
                         [("RAWY", -1, 1), ("RAWY", 256, 1), ("RAWZ", -1, 1), ("RAWZ", 256, 1), ("RAWZ", 300, 1),
                          ("RAWY", 0, 0), ("RAWY", 255, 0), ("RAWZ", 0, 0), ("RAWZ", 255, 0)])  # fmt: skip
def test_every_detector_edge_drops_outside_hits(column, value, dropped):
    """A hit one pixel past any of the four edges is dropped as outside the detector;
    the first and last pixel rows and columns are kept."""
    cols = {k: v.copy() for k, v in _all(np.random.default_rng(5), 10).items()}
    cols[column][0] = value
    merged, rep = merge_passes([_pass(cols, 1)])
    assert rep.dropped["outside_detector"] == dropped
    assert rep.n_hits_kept + rep.dropped["duplicate_pixel"] == cols["TIME"].size - dropped
