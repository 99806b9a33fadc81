"""Deliberately broken variants of the pipeline: the harness must catch each one.

A :class:`BrokenVariant` describes one plausible bug (the CTI correction with its sign
flipped, the PSF shifted by one pixel, a gap dropped from the GTI, the wrong energy
band, the time sort removed, ...): how to introduce it (a function receiving pytest's
``monkeypatch``), on which golden dataset it shows, and which brick and which quantity
(a column, an HDU, a keyword or a JSON key) the harness's failure message must name.

:func:`verdict` runs the replay of that golden dataset with the variant applied and
says whether the harness caught it *as described*: at least one failing check whose
message names ``brick <name>`` and the quantity.  :data:`VARIANTS` lists the variants;
each patches the science code exactly where a real bug would sit, through pytest's
``monkeypatch`` (undone at the end of the test), so they are applied only inside
tests (``harness/tests/test_broken_variants.py``).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.results import CheckResult, Status

__all__ = ["BrokenVariant", "VARIANTS", "caught", "verdict"]


@dataclass(frozen=True)
class BrokenVariant:
    """One deliberate bug.

    Attributes
    ----------
    name : str
        What is broken, in words.
    brick : str
        The brick whose replay must fail.
    quantity : str
        What the failure message must name (column, HDU, keyword or JSON key).
    golden : str
        The golden dataset on which the bug shows.
    apply : callable
        ``apply(monkeypatch)`` introduces the bug.
    """

    name: str
    brick: str
    quantity: str
    golden: str
    apply: Callable[[Any], None]

    def __str__(self) -> str:
        return f"{self.name} ({self.brick}/{self.quantity} on {self.golden})"


def caught(variant: BrokenVariant, checks: Iterable[CheckResult]) -> list[CheckResult]:
    """The failing checks that name the variant's brick and quantity."""
    out = []
    for c in checks:
        if c.status != Status.FAIL:
            continue
        if f"brick {variant.brick}" in c.message and variant.quantity in c.message:
            out.append(c)
    return out


def verdict(variant: BrokenVariant, golden_dir: Path, config, work: Path, *, pipeline: bool = False) -> tuple[bool, list[CheckResult]]:
    """Replay the variant's brick on ``golden_dir`` (the variant already applied; the
    pipeline end to end too with ``pipeline=True``) and tell whether it was caught.

    Returns
    -------
    (bool, list of CheckResult)
        Caught as described, and every check of the replay (for the test's message).
    """
    from harness.replay import replay_dataset

    checks, _ = replay_dataset(golden_dir, config, work, bricks=True, pipeline=pipeline, only=(variant.brick,))
    return bool(caught(variant, checks)), checks


# --------------------------------------------------------------------------------------
# The variants
# --------------------------------------------------------------------------------------


def _cti_sign_flipped(mp: Any) -> None:
    """The CTI loss is added instead of restored: ``E + (E - E_corr)`` instead of ``E_corr``."""
    from mxt_pipeline.calib import energy

    original = energy.CTIInverseTable.__call__

    def flipped(self, e_measured, rawz):
        e = np.asarray(e_measured, dtype=float)
        return 2.0 * e - original(self, e_measured, rawz)

    mp.setattr(energy.CTIInverseTable, "__call__", flipped)


def _time_sort_removed(mp: Any) -> None:
    """The merge of the passes keeps the delivery order (``argsort`` is the identity)."""
    from mxt_pipeline.calib import ingest

    proxy = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    proxy.argsort = lambda a, *args, **kwargs: np.arange(np.asarray(a).shape[0])
    mp.setattr(ingest, "np", proxy)


def _saa_gap_dropped(mp: Any) -> None:
    """The SAA intervals no longer remove anything from the GTI."""
    from mxt_pipeline.calib import screening
    from mxt_pipeline.datamodel import GTI

    mp.setattr(screening, "saa_bad_time", lambda saa: GTI.empty())


def _psf_shifted_one_pixel(mp: Any) -> None:
    """The PSF model is centred one pixel (RAWY) off the source position."""
    from mxt_pipeline.detect import bandpsf

    cls = bandpsf.BandPSF
    density, terms, fractions = cls.density, cls.terms, cls.pixel_fractions
    mp.setattr(cls, "density", lambda self, dy, dz, theta=0.0: density(self, np.asarray(dy) - 1.0, dz, theta))
    mp.setattr(cls, "terms", lambda self, ye, ze, y, z, theta=0.0, derivatives=False:
               terms(self, ye, ze, np.asarray(y) + 1.0, z, theta, derivatives))  # fmt: skip
    mp.setattr(cls, "pixel_fractions", lambda self, ye, ze, y0, z0, theta=0.0:
               fractions(self, ye, ze, np.asarray(y0) + 1.0, z0, theta))  # fmt: skip


def _wrong_energy_band(mp: Any) -> None:
    """The detection bands start at 0.5 keV instead of 0.2 keV (a mistyped lower edge)."""
    from mxt_pipeline.detect import bands

    original = bands.as_bands

    def wrong(spec):
        out = original(spec)
        return tuple(bands.EnergyBand(0.5, b.e_max) if abs(b.e_min - 0.2) < 1e-9 else b for b in out)

    mp.setattr(bands, "as_bands", wrong)


def _lc_psf_fraction_dropped(mp: Any) -> None:
    """Light-curve rates not corrected for the PSF fraction outside the source circle."""
    from mxt_pipeline.lightcurve import extract

    original = extract.light_curve

    def uncorrected(*args, **kwargs):
        kwargs["psf_fraction"] = 1.0
        return original(*args, **kwargs)

    mp.setattr(extract, "light_curve", uncorrected)


def _crc_check_off(mp: Any) -> None:
    """The packet error control is not checked: the decoder accepts a packet whatever its CRC-16."""
    import struct

    from mxt_pipeline.telemetry import packets, stream

    original = stream.parse_packet

    def unchecked(raw: bytes):
        raw = bytes(raw)
        if len(raw) > 2:  # stamp the CRC the packet would have: the check always passes
            raw = raw[:-2] + struct.pack(">H", packets.crc16_ccitt(raw[:-2]))
        return original(raw)

    mp.setattr(stream, "parse_packet", unchecked)


def _telemetry_loss_kept_in_gti(mp: Any) -> None:
    """Missing science packets are counted but their time stays in the pass GTI (no TELEMETRY gap)."""
    from mxt_pipeline.telemetry import stream

    original = stream._lost_intervals

    def kept(sci, n_expected, gti, frametime):
        _, missing = original(sci, n_expected, gti, frametime)
        return [], missing

    mp.setattr(stream, "_lost_intervals", kept)


#: The deliberate bugs the harness must catch (issue item 7).
VARIANTS: tuple[BrokenVariant, ...] = (
    BrokenVariant("CTI correction with its sign flipped", "calibrate", "ENERGY", "calibration_lines", _cti_sign_flipped),
    BrokenVariant("time sort of the merged passes removed", "calibrate", "TIME", "passes_out_of_order", _time_sort_removed),
    BrokenVariant("SAA gap dropped from the GTI", "calibrate", "GTI", "saa_crossing", _saa_gap_dropped),
    BrokenVariant("PSF shifted by one pixel", "detect", "RA", "three_sources", _psf_shifted_one_pixel),
    BrokenVariant("wrong energy band (0.5 keV instead of 0.2 keV)", "detect", "E_MIN", "three_sources", _wrong_energy_band),
    BrokenVariant("light-curve PSF-fraction correction dropped", "lightcurves", "RATE", "grb_bright", _lc_psf_fraction_dropped),
    BrokenVariant("telemetry CRC-16 check switched off", "preprocess", "corrupted", "telemetry_downlink", _crc_check_off),
    BrokenVariant("lost telemetry left in the pass GTI", "preprocess", "GTI", "telemetry_downlink", _telemetry_loss_kept_in_gti),
)  # fmt: skip
