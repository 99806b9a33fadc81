"""Event reconstruction: pattern table, order independence, engines, reference, truth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.calib import _kernels
from mxt_pipeline.calib.patterns import PATTERN_TABLE, pixel_keys, reconstruct
from mxt_pipeline.errors import MXTInputError

from .linegen import epic_pattern, make_line_hits
from .reference import reference_events
from .standins import StandInCalibrationSet

ENGINES = ["numpy"] + (["numba"] if _kernels.HAVE_NUMBA else [])


def _events(rec, frame, y, z):
    """Order-free description of the events: (frame, main y, main z, pattern, mult, hit set)."""
    out = set()
    for k, m in enumerate(rec.main_hit):
        members = np.flatnonzero(rec.event_of_hit == k)
        hits = frozenset(zip(y[members].tolist(), z[members].tolist()))
        out.add((int(frame[m]), int(y[m]), int(z[m]), int(rec.pattern[k]), int(rec.multiplicity[k]), hits))
    return out


def _single_event(offsets, energies, engine):
    y = np.array([100 + dy for dy, _ in offsets])
    z = np.array([50 + dz for _, dz in offsets])
    rec = reconstruct(np.zeros(len(y), int), y, z, np.asarray(energies, float), 0.05, 0.1, engine=engine)
    assert rec.n_events == 1
    return int(rec.pattern[0]), int(rec.multiplicity[0])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("offsets", "code"),
    [
        ([(0, 0)], 0),
        ([(0, 0), (0, 1)], 1),
        ([(0, 0), (1, 0)], 2),
        ([(0, 0), (0, -1)], 3),
        ([(0, 0), (-1, 0)], 4),
        ([(0, 0), (1, 0), (0, 1)], 5),
        ([(0, 0), (1, 0), (0, -1)], 6),
        ([(0, 0), (-1, 0), (0, -1)], 7),
        ([(0, 0), (-1, 0), (0, 1)], 8),
        ([(0, 0), (1, 0), (0, 1), (1, 1)], 9),
        ([(0, 0), (1, 0), (0, -1), (1, -1)], 10),
        ([(0, 0), (-1, 0), (0, -1), (-1, -1)], 11),
        ([(0, 0), (-1, 0), (0, 1), (-1, 1)], 12),
        ([(0, 0), (1, 1)], 13),  # diagonal only
        ([(0, 0), (0, 1), (0, 2)], 13),  # straight triple
        ([(0, 0), (0, -1), (0, 1)], 13),  # straight triple, maximum in the middle
        ([(0, 0), (1, 0), (2, 0), (2, 1), (3, 1)], 13),  # long track
    ],
)
def test_pattern_codes(offsets, code, engine):
    """The brightest hit is the first listed; codes follow the documented EPIC-pn table."""
    energies = [1.0] + [0.3] * (len(offsets) - 1)
    pat, mult = _single_event(offsets, energies, engine)
    assert pat == code
    assert mult == len(offsets)


@pytest.mark.parametrize("engine", ENGINES)
def test_triple_with_maximum_at_the_end_is_invalid(engine):
    # L shape (0,0)-(1,0)-(1,1) with the maximum at (0,0), an end of the L.
    pat, _ = _single_event([(0, 0), (1, 0), (1, 1)], [1.0, 0.5, 0.3], engine)
    assert pat == 13


def test_table_agrees_with_the_explicit_rule():
    """Every 3x3 shape containing the centre: the bit table equals the shape-by-shape rule."""
    for mask in range(512):
        if not mask & (1 << 4):
            continue
        offs = {(b // 3 - 1, b % 3 - 1) for b in range(9) if mask >> b & 1}
        assert PATTERN_TABLE[mask] == epic_pattern(offs), offs


def _random_hits(draw_seed, n_frames, n_hits, dense=False):
    rng = np.random.default_rng(draw_seed)
    span = 6 if dense else 256
    f = rng.integers(0, n_frames, n_hits)
    y = rng.integers(0, span, n_hits) + (0 if dense else 0)
    z = rng.integers(0, span, n_hits)
    key = np.unique(pixel_keys(f, y, z))
    W = 258
    z = key % W - 1
    y = (key // W) % W - 1
    f = key // (W * W)
    # Quantised energies so that ties occur and are exercised.
    e = rng.integers(0, 40, key.size) * 0.05
    return f, y, z, e


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300), dense=st.booleans(), perm_seed=st.integers(0, 1000))
def test_independent_of_hit_order(seed, n, dense, perm_seed):
    f, y, z, e = _random_hits(seed, 3, n, dense)
    base = reconstruct(f, y, z, e, 0.2, 0.5)
    p = np.random.default_rng(perm_seed).permutation(f.size)
    shuffled = reconstruct(f[p], y[p], z[p], e[p], 0.2, 0.5)
    assert _events(base, f, y, z) == _events(shuffled, f[p], y[p], z[p])
    # Event numbering is canonical too: same main pixels in the same order.
    np.testing.assert_array_equal(p[shuffled.main_hit], base.main_hit)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400), dense=st.booleans())
def test_numpy_and_compiled_engines_agree(seed, n, dense):
    if not _kernels.HAVE_NUMBA:
        pytest.skip("numba not installed")
    f, y, z, e = _random_hits(seed, 4, n, dense)
    a = reconstruct(f, y, z, e, 0.2, 0.5, engine="numpy")
    b = reconstruct(f, y, z, e, 0.2, 0.5, engine="numba")
    np.testing.assert_array_equal(a.event_of_hit, b.event_of_hit)
    np.testing.assert_array_equal(a.main_hit, b.main_hit)
    np.testing.assert_array_equal(a.multiplicity, b.multiplicity)
    np.testing.assert_array_equal(a.pattern, b.pattern)
    assert (a.n_below_split, a.n_below_primary) == (b.n_below_split, b.n_below_primary)


@pytest.mark.parametrize("engine", ENGINES)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300), dense=st.booleans())
def test_matches_per_frame_reference(engine, seed, n, dense):
    """Same events as the scipy.ndimage per-frame reference (thresholds included)."""
    f, y, z, e = _random_hits(seed, 3, n, dense)
    rec = reconstruct(f, y, z, e, 0.2, 0.5, engine=engine)
    ref = reference_events(f, y, z, e, 0.2, 0.5)
    got = sorted((int(f[m]), int(y[m]), int(z[m]), int(rec.pattern[k]), int(rec.multiplicity[k])) for k, m in enumerate(rec.main_hit))
    assert got == sorted(r[:5] for r in ref)


def test_matches_simulated_truth_on_isolated_events():
    """One photon per frame: the pattern equals the one of the simulated charge map.

    Truth: the pixels whose noisy charge (before transfer losses) is above the split
    threshold, classified by the shape-by-shape rule; photons with a pixel within 5 eV
    of a threshold are left out (ADC rounding may move them across it).
    """
    cs = StandInCalibrationSet()
    rng = np.random.default_rng(5)
    hits, truth = make_line_hits(3.0, 3000, rng, cs, photons_per_frame=1, apply_cti=False)
    split, primary = cs.pattern.split_threshold, cs.pattern.primary_threshold
    q = truth["HIT_NOISY_CHARGE"]
    e_hit = cs.gainoff.to_energy(hits["PHA"], hits["RAWY"])
    rec = reconstruct(hits["FRAME"], hits["RAWY"], hits["RAWZ"], e_hit, split, primary)
    ev_frame = hits["FRAME"][rec.main_hit]
    frames = hits["FRAME"]
    bounds = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1], True])
    n_checked = 0
    for s, e in zip(bounds[:-1], bounds[1:]):
        qq = q[s:e]
        if np.any(np.abs(qq - split) < 0.005) or np.any(np.abs(qq - primary) < 0.005):
            continue
        above = np.flatnonzero(qq >= split) + s
        k = np.flatnonzero(ev_frame == frames[s])
        if above.size == 0 or q[above].max() < primary:
            assert k.size == 0
            continue
        assert k.size == 1
        best = above[np.argmax(q[above])]
        offs = {(int(hits["RAWY"][i] - hits["RAWY"][best]), int(hits["RAWZ"][i] - hits["RAWZ"][best])) for i in above}
        assert rec.pattern[k[0]] == epic_pattern(offs)
        assert rec.multiplicity[k[0]] == above.size
        n_checked += 1
    assert n_checked > 2500
    # The simulated mix has every valid pattern family.
    assert set(np.unique(rec.pattern)) >= {0, 1, 2, 3, 4, 5, 9}


@pytest.mark.parametrize("engine", ENGINES)
def test_thresholds(engine):
    # Event A: 0.4 + 0.04 (below split); event B: 0.08 alone (below primary).
    f = np.zeros(3, int)
    y = np.array([10, 10, 200])
    z = np.array([10, 11, 30])
    e = np.array([0.4, 0.04, 0.08])
    rec = reconstruct(f, y, z, e, 0.05, 0.1, engine=engine)
    assert rec.n_events == 1 and rec.multiplicity[0] == 1 and rec.pattern[0] == 0
    assert rec.n_below_split == 1 and rec.n_below_primary == 1
    np.testing.assert_array_equal(rec.event_of_hit, [0, -1, -1])


@pytest.mark.parametrize("engine", ENGINES)
def test_no_link_across_frames_rows_or_edges(engine):
    # Same pixel in consecutive frames; z=255 next to z=0 of the next row; y=255 / y=0.
    f = np.array([0, 1, 2, 2, 3, 4])
    y = np.array([5, 5, 7, 8, 255, 0])
    z = np.array([5, 5, 255, 0, 9, 9])
    rec = reconstruct(f, y, z, np.ones(6), 0.05, 0.1, engine=engine)
    assert rec.n_events == 6


def test_empty_and_bad_input():
    rec = reconstruct(np.zeros(0, int), np.zeros(0, int), np.zeros(0, int), np.zeros(0), 0.05, 0.1)
    assert rec.n_events == 0
    with pytest.raises(MXTInputError, match="same pixel"):
        reconstruct(np.zeros(2, int), np.array([3, 3]), np.array([4, 4]), np.ones(2), 0.05, 0.1)
    with pytest.raises(MXTInputError, match="outside"):
        reconstruct(np.zeros(1, int), np.array([256]), np.array([4]), np.ones(1), 0.05, 0.1)
    with pytest.raises(MXTInputError, match="unequal"):
        reconstruct(np.zeros(2, int), np.array([1]), np.array([4]), np.ones(1), 0.05, 0.1)
