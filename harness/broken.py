"""Deliberately broken variants of the pipeline: the harness must catch each one.

A :class:`BrokenVariant` describes one plausible bug (the CTI correction with its sign
flipped, the PSF shifted by one pixel, a gap dropped from the GTI, the wrong energy
band, the time sort removed, ...): how to introduce it (a function receiving pytest's
``monkeypatch``), on which golden dataset it shows, and which brick and which quantity
(a column, an HDU, a keyword or a JSON key) the harness's failure message must name.

:func:`verdict` runs the replay of that golden dataset with the variant applied and
says whether the harness caught it *as described*: at least one failing check whose
message names ``brick <name>`` and the quantity.  The variants themselves live in
``harness/tests/test_broken_variants.py``; they are applied only inside tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.results import CheckResult, Status

__all__ = ["BrokenVariant", "caught", "verdict"]


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
