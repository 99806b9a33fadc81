"""Detector kernels: charge splitting, frame accumulation, counter-based noise, digitisation."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from mxt_pipeline.simulate.detector import (
    DetectorModel,
    DetectorSettings,
    HotPixel,
    accumulate,
    fano_charge,
    hash_normal,
    noise_hits,
    pixel_key,
    split_charge,
)


def cloud_fractions_reference(fy: float, fz: float, sigma_pix: float) -> np.ndarray:
    """3 x 3 charge fractions by explicit erf integrals; the outer pixels take the tails."""

    def cdf(x):
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    def frac(f):
        b1 = cdf((-0.5 - f) / sigma_pix)
        b2 = cdf((0.5 - f) / sigma_pix)
        return np.array([b1, b2 - b1, 1.0 - b2])

    return np.outer(frac(fy), frac(fz))


@given(
    st.floats(-0.5, 0.4999), st.floats(-0.5, 0.4999), st.floats(0.05, 0.6), st.integers(1, 254), st.integers(1, 254),
    st.floats(0.2, 10.0),
)  # fmt: skip
def test_split_charge_against_erf_reference(fy, fz, sigma, iy, iz, q):
    photon, py, pz, share, peak = split_charge(np.array([iy + fy]), np.array([iz + fz]), np.array([q]), np.array([sigma]),
                                         min_share_kev=0.0)  # fmt: skip
    ref = cloud_fractions_reference(fy, fz, sigma) * q
    got = np.zeros((3, 3))
    got[py - iy + 1, pz - iz + 1] = share
    np.testing.assert_allclose(got, ref, atol=1e-12)
    assert share.sum() == pytest.approx(q, rel=1e-12)  # charge is conserved
    assert peak[0] == pytest.approx(ref.max(), rel=1e-12)


def test_split_drops_small_shares_only():
    rng = np.random.default_rng(0)
    n = 2000
    y, z = rng.uniform(10, 200, n), rng.uniform(10, 200, n)
    q = rng.uniform(0.3, 8, n)
    photon, _, _, share, _ = split_charge(y, z, q, np.full(n, 0.15), min_share_kev=1e-3)
    assert np.all(share >= 1e-3)
    lost = q - np.bincount(photon, weights=share, minlength=n)
    assert np.all(lost >= -1e-12) and np.all(lost < 8 * 1e-3)


def test_accumulate_matches_dictionary():
    rng = np.random.default_rng(1)
    n = 5000
    f = np.sort(rng.integers(0, 50, n))
    y, z = rng.integers(0, 4, n), rng.integers(0, 4, n)  # dense: many pile-ups
    s = rng.random(n)
    key, q = accumulate(f, y, z, s)
    ref = defaultdict(float)
    for a, b, c, d in zip(f, y, z, s):
        ref[(a, b, c)] += d
    assert key.size == len(ref)
    assert np.all(np.diff(key) > 0)
    for k, v in zip(key, q):
        kk = (k // 65536, (k // 256) % 256, k % 256)
        assert v == pytest.approx(ref[kk], rel=1e-12)
    np.testing.assert_array_equal(pixel_key(np.array([2]), np.array([3]), np.array([4])), [2 * 65536 + 3 * 256 + 4])


def test_hash_normal_is_standard_normal_and_reproducible():
    keys = np.arange(200000, dtype=np.int64) * 7919
    x = hash_normal(keys, salt=42)
    np.testing.assert_array_equal(x, hash_normal(keys, salt=42))
    # KS test against N(0, 1): false-failure rate 1e-3.
    assert stats.kstest(x, "norm").pvalue > 1e-3
    # Different salts are uncorrelated (|r| < 4.5 / sqrt(n): false failure < 1e-5).
    y = hash_normal(keys, salt=43)
    assert abs(np.corrcoef(x, y)[0, 1]) < 4.5 / math.sqrt(keys.size)
    # Neighbouring keys are uncorrelated.
    assert abs(np.corrcoef(x[1:], x[:-1])[0, 1]) < 4.5 / math.sqrt(keys.size)


def test_noise_hits_rate_and_tail():
    rng = np.random.default_rng(2)
    frames = np.arange(2000)
    thr, sig = 0.03, 0.008  # 3.75 sigma: about 5.8 noise hits per frame
    f, y, z, v = noise_hits(frames, thr, sig, rng)
    mu = frames.size * 65536 * stats.norm.sf(thr / sig)
    assert abs(f.size - mu) < 4.5 * math.sqrt(mu)
    assert np.all(v >= thr)
    # Values follow the normal tail beyond the threshold (KS, false failure 1e-3).
    tail = stats.truncnorm(thr / sig, np.inf, scale=sig)
    assert stats.kstest(v, tail.cdf).pvalue > 1e-3
    assert noise_hits(frames, thr, 0.0, rng)[0].size == 0


def test_fano_charge_spread():
    rng = np.random.default_rng(3)
    q = fano_charge(np.full(200000, 5.895), rng)
    # sigma = sqrt(F w E): 0.115 x 3.65 eV x 5895 eV -> 49.7 eV rms (FWHM 117 eV).
    assert q.std() == pytest.approx(math.sqrt(0.115 * 3.65e-3 * 5.895), rel=0.01)
    assert q.mean() == pytest.approx(5.895, abs=5e-4)


class _Linear:
    """A detector with simple, exactly invertible calibration (tests only)."""

    @staticmethod
    def model(**kw):
        gain = np.full(256, 5.0)
        offset = np.full(256, 100.0)
        return DetectorModel(
            sigma_um=lambda e: np.full(np.shape(e), 8.0),
            read_noise_kev=kw.get("noise", 0.0),
            primary_threshold_kev=0.15,
            split_threshold_kev=0.06,
            onboard_threshold_kev=0.06,
            cti_apply=lambda e, z: e * (1 - 1e-4) ** (np.asarray(z) + 1.0),
            to_pha=lambda e, y: offset[np.asarray(y)] + np.asarray(e) * 1000.0 / gain[np.asarray(y)],
            gain_ev_adu=gain,
            offset_adu=offset,
            masked=kw.get("masked", np.zeros((256, 256), dtype=bool)),
            settings=kw.get("settings", DetectorSettings()),
        )


def test_respond_single_photon_signal_chain():
    det = _Linear.model()
    hits, detected = det.respond(np.array([3]), np.array([100.0]), np.array([50.0]), np.array([2.0]), np.array([2.0]),
                                 salt=1)  # fmt: skip
    assert detected[0]
    # Centre of the pixel, small cloud: a single hit carrying all the charge.
    assert hits["FRAME"].tolist() == [3] and hits["RAWY"].tolist() == [100] and hits["RAWZ"].tolist() == [50]
    expected = 100.0 + 2.0 * (1 - 1e-4) ** 51 * 1000.0 / 5.0
    assert hits["PHA"][0] == round(expected)


def test_pileup_sums_charge_of_photons_in_one_frame():
    det = _Linear.model()
    one, _ = det.respond(np.array([0]), np.array([100.0]), np.array([50.0]), np.array([1.0]), np.array([1.0]), salt=1)
    two, _ = det.respond(np.array([0, 0]), np.array([100.0, 100.0]), np.array([50.0, 50.0]), np.array([1.0, 1.0]),
                         np.array([1.0, 1.0]), salt=1)  # fmt: skip
    sep, _ = det.respond(np.array([0, 1]), np.array([100.0, 100.0]), np.array([50.0, 50.0]), np.array([1.0, 1.0]),
                         np.array([1.0, 1.0]), salt=1)  # fmt: skip
    assert two["PHA"][0] - 100 == pytest.approx(2 * (one["PHA"][0] - 100), abs=1)
    assert sep["FRAME"].tolist() == [0, 1]


def test_thresholds_masks_hot_pixels():
    masked = np.zeros((256, 256), dtype=bool)
    masked[10, 10] = True
    det = _Linear.model(masked=masked, settings=DetectorSettings(noise_hits=False, hot_pixels=(HotPixel(20, 30, 1.0, 1.0),)))
    hits, det_flag = det.respond(np.array([0, 0, 1]), np.array([10.0, 60.0, 70.0]), np.array([10.0, 60.0, 70.0]),
                                 np.array([1.0, 0.05, 1.0]), np.array([1.0, 0.05, 1.0]), salt=3,
                                 frames_read=np.arange(5), rng=np.random.default_rng(0))  # fmt: skip
    assert det_flag.tolist() == [True, False, True]
    pix = set(zip(hits["RAWY"].tolist(), hits["RAWZ"].tolist()))
    assert (10, 10) not in pix  # masked on board
    assert (60, 60) not in pix  # 50 eV, below the 60 eV on-board threshold
    assert (70, 70) in pix
    assert sum(1 for p in zip(hits["RAWY"], hits["RAWZ"]) if p == (20, 30)) == 5  # fires in every frame


def test_read_noise_is_independent_of_other_photons():
    det = _Linear.model(noise=0.008)
    a, _ = det.respond(np.array([0]), np.array([100.0]), np.array([50.0]), np.array([1.0]), np.array([1.0]), salt=9)
    b, _ = det.respond(np.array([0, 0]), np.array([100.0, 200.0]), np.array([50.0, 20.0]), np.array([1.0, 3.0]),
                       np.array([1.0, 3.0]), salt=9)  # fmt: skip
    sel = (b["RAWY"] == 100) & (b["RAWZ"] == 50)
    assert b["PHA"][sel][0] == a["PHA"][(a["RAWY"] == 100) & (a["RAWZ"] == 50)][0]
