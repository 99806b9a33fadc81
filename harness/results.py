"""The records every check of a regression run produces, gathered into one summary.

A :class:`CheckResult` says which check ran on what (``section`` and ``name``, e.g.
``replay`` / ``grb_bright/calibrate``), its verdict, a one-line message naming the brick
and the quantity when it fails, the figures behind the verdict, and the long account
(a FITS diff) for the report.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Status", "CheckResult", "RunSummary"]


class Status(enum.StrEnum):
    """Verdict of one check."""

    PASS = "PASS"
    #: A regression: the run fails.
    FAIL = "FAIL"
    #: Not run (its prerequisite is absent, e.g. fitsverify on a developer machine).
    SKIP = "SKIP"
    #: Golden data that the configuration declares do not exist yet. Fails the run
    #: when ``golden.required`` is true.
    MISSING = "MISSING"
    #: Ran; worth a look, not a failure.
    WARN = "WARN"


@dataclass
class CheckResult:
    """One check of a regression run."""

    section: str
    name: str
    status: Status
    message: str
    figures: dict[str, Any] = field(default_factory=dict)
    details: str = ""
    elapsed_s: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == Status.FAIL

    def line(self) -> str:
        return f"{self.status:<7} {self.section}/{self.name}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "status": str(self.status),
            "message": self.message,
            "figures": self.figures,
            "details": self.details,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass
class RunSummary:
    """Every check of a run, the plots, and the run's identity."""

    commit: str
    date: str
    checks: list[CheckResult] = field(default_factory=list)
    plots: dict[str, str] = field(default_factory=dict)
    missing_golden_fails: bool = False
    elapsed_s: float = 0.0

    def add(self, check: CheckResult) -> CheckResult:
        self.checks.append(check)
        return check

    def extend(self, checks: list[CheckResult]) -> None:
        self.checks.extend(checks)

    def failures(self) -> list[CheckResult]:
        out = [c for c in self.checks if c.status == Status.FAIL]
        if self.missing_golden_fails:
            out += [c for c in self.checks if c.status == Status.MISSING]
        return out

    @property
    def ok(self) -> bool:
        return not self.failures()

    def counts(self) -> dict[str, int]:
        out = {str(s): 0 for s in Status}
        for c in self.checks:
            out[str(c.status)] += 1
        return out

    def sections(self) -> list[str]:
        seen: list[str] = []
        for c in self.checks:
            if c.section not in seen:
                seen.append(c.section)
        return seen

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "date": self.date,
            "ok": self.ok,
            "counts": self.counts(),
            "elapsed_s": round(self.elapsed_s, 1),
            "checks": [c.to_dict() for c in self.checks],
        }
