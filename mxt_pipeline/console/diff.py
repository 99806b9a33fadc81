"""What changed between two collections of the same observation.

* sources: each source of the new collection is matched with the nearest one of the
  previous collection (within ``match_arcsec``); the table gives how far it moved and
  how its R90 and DET_ML changed; sources without a partner are listed as new or gone;
* light curves: the light-curve files present in both collections are compared with
  the regression harness's FITS comparison (:func:`harness.fitsdiff.diff_fits`, with
  the harness's tolerances), one line per difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mxt_pipeline.console.scan import SourceRow, read_sources
from mxt_pipeline.geometry import angular_separation_arcsec

__all__ = ["SourceChange", "CollectionDiff", "angular_distance_arcsec", "diff_collections"]


def angular_distance_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance (arcsec) between two positions in degrees (the calibration chain's formula)."""
    return float(angular_separation_arcsec(ra1, dec1, ra2, dec2))


@dataclass(frozen=True)
class SourceChange:
    """A source in the new collection, the previous one, or both."""

    new: SourceRow | None
    old: SourceRow | None
    moved_arcsec: float | None

    @property
    def kind(self) -> str:
        return "matched" if self.new and self.old else ("new" if self.new else "gone")

    @property
    def r90_change(self) -> float | None:
        return self.new.r90_arcsec - self.old.r90_arcsec if self.new and self.old else None

    @property
    def det_ml_change(self) -> float | None:
        return self.new.det_ml - self.old.det_ml if self.new and self.old else None


@dataclass
class CollectionDiff:
    """Differences of a new collection against the previous one."""

    new: str
    old: str
    sources: list[SourceChange] = field(default_factory=list)
    light_curves: list[dict[str, Any]] = field(default_factory=list)


def match_sources(new: list[SourceRow], old: list[SourceRow], match_arcsec: float) -> list[SourceChange]:
    """Greedy nearest-pair matching (closest pairs first), each source used once."""
    pairs = sorted(
        (angular_distance_arcsec(a.ra, a.dec, b.ra, b.dec), i, j)
        for i, a in enumerate(new) for j, b in enumerate(old)
    )  # fmt: skip
    used_new: set[int] = set()
    used_old: set[int] = set()
    out: list[SourceChange] = []
    for d, i, j in pairs:
        if d > match_arcsec:
            break
        if i in used_new or j in used_old:
            continue
        used_new.add(i)
        used_old.add(j)
        out.append(SourceChange(new[i], old[j], d))
    out += [SourceChange(s, None, None) for i, s in enumerate(new) if i not in used_new]
    out += [SourceChange(None, s, None) for j, s in enumerate(old) if j not in used_old]
    return out


def _first(folder: Path, pattern: str) -> Path | None:
    return next(iter(sorted(folder.glob(pattern))), None)


def diff_collections(new_dir: Path, old_dir: Path, match_arcsec: float = 120.0) -> CollectionDiff:
    """Compare two collections (see the module docstring)."""
    from harness.fitsdiff import diff_fits  # the harness's comparison, with its tolerances

    result = CollectionDiff(new_dir.name, old_dir.name)
    sky_new, sky_old = _first(new_dir, "mxt_sop_sky_*.fits"), _first(old_dir, "mxt_sop_sky_*.fits")
    new_src = read_sources(sky_new) if sky_new else []
    old_src = read_sources(sky_old) if sky_old else []
    result.sources = match_sources(new_src, old_src, match_arcsec)
    for lc_new in sorted(new_dir.glob("mxt_lc_*.fits")):
        lc_old = old_dir / lc_new.name
        if not lc_old.is_file():
            result.light_curves.append({"file": lc_new.name, "identical": False, "summary": "new light curve", "lines": []})
            continue
        d = diff_fits(lc_new, lc_old)
        result.light_curves.append({
            "file": lc_new.name, "identical": d.identical, "summary": d.summary(),
            "lines": [x.line() for x in d.differences],
        })  # fmt: skip
    for lc_old in sorted(old_dir.glob("mxt_lc_*.fits")):
        if not (new_dir / lc_old.name).is_file():
            result.light_curves.append({"file": lc_old.name, "identical": False, "summary": "light curve gone", "lines": []})
    return result
