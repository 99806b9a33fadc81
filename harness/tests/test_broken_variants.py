"""Deliberately broken variants of the real pipeline: each must fail the harness with a
message naming the brick and the quantity (issue item 7).

Each variant is applied by monkeypatching the science code exactly where a real bug
would sit; :func:`harness.broken.verdict` replays the brick on its golden dataset.
The variants need the golden datasets: while they do not exist the tests skip (or fail
when the configuration declares them required).
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from harness import broken
from harness.config import repo_root
from harness.golden import GoldenStore


def _cti_sign_flipped(mp):
    from mxt_pipeline.calib import energy

    original = energy.CTIInverseTable.__call__

    def flipped(self, e_measured, rawz):
        e = np.asarray(e_measured, dtype=float)
        # The loss is added instead of restored: E + (E - E_corr) instead of E_corr.
        return 2.0 * e - original(self, e_measured, rawz)

    mp.setattr(energy.CTIInverseTable, "__call__", flipped)


def _time_sort_removed(mp):
    from mxt_pipeline.calib import ingest

    proxy = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    proxy.argsort = lambda a, *args, **kwargs: np.arange(np.asarray(a).shape[0])
    mp.setattr(ingest, "np", proxy)


def _saa_gap_dropped(mp):
    from mxt_pipeline.calib import screening
    from mxt_pipeline.datamodel import GTI

    mp.setattr(screening, "saa_bad_time", lambda saa: GTI.empty())


def _psf_shifted_one_pixel(mp):
    from mxt_pipeline.detect import bandpsf

    cls = bandpsf.BandPSF
    density, terms, fractions = cls.density, cls.terms, cls.pixel_fractions
    mp.setattr(cls, "density", lambda self, dy, dz, theta=0.0: density(self, np.asarray(dy) - 1.0, dz, theta))
    mp.setattr(cls, "terms", lambda self, ye, ze, y, z, theta=0.0, derivatives=False:
               terms(self, ye, ze, np.asarray(y) + 1.0, z, theta, derivatives))  # fmt: skip
    mp.setattr(cls, "pixel_fractions", lambda self, ye, ze, y0, z0, theta=0.0:
               fractions(self, ye, ze, np.asarray(y0) + 1.0, z0, theta))  # fmt: skip


def _wrong_energy_band(mp):
    from mxt_pipeline.detect import bands

    mp.setattr(bands, "DEFAULT_BANDS", (bands.EnergyBand(0.5, 2.0), bands.EnergyBand(2.0, 10.0)))


VARIANTS = [
    broken.BrokenVariant("CTI correction with its sign flipped", "calibrate", "ENERGY", "calibration_lines", _cti_sign_flipped),
    broken.BrokenVariant("time sort of the merged passes removed", "calibrate", "TIME", "passes_out_of_order", _time_sort_removed),
    broken.BrokenVariant("SAA gap dropped from the GTI", "calibrate", "GTI", "saa_crossing", _saa_gap_dropped),
    broken.BrokenVariant("PSF shifted by one pixel", "detect", "RA", "three_sources", _psf_shifted_one_pixel),
    broken.BrokenVariant("wrong energy band (0.5 keV instead of 0.2 keV)", "detect", "E_MIN", "three_sources", _wrong_energy_band),
]  # fmt: skip


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
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
