"""Checks on every output: schema, fitsverify, localization, campaign ensemble.

* **schema**: :func:`mxt_pipeline.io.validate_file` (what ``mxt validate`` runs): the
  product's structure, OGIP keywords and column values against its declared format;
* **fitsverify**: HEASARC's checker of the FITS standard itself, through
  :func:`mxt_pipeline.io.fitsverify.run_fitsverify`; its error count decides, warnings
  are reported; skipped (with a warning) only when the program is absent;
* **localization**: every simulated source inside the field must be found within its
  90 % error radius (``ERR_R90`` of the source list) of its true position;
* **ensemble**: the headline figures of a small Monte-Carlo campaign (R90 coverage,
  detection efficiency, false detections per field, ...) against the bounds of the
  configuration (``ensemble.thresholds``).

Each function returns :class:`~harness.results.CheckResult` records whose message names
the product (brick) and the quantity that failed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.filediff import is_fits
from harness.results import CheckResult, Status
from mxt_pipeline.binomial import clopper_pearson
from mxt_pipeline.geometry import angular_separation_arcsec

__all__ = [
    "schema_check",
    "fitsverify_check",
    "output_checks",
    "angular_separation_arcsec",
    "truth_sources",
    "localization_check",
    "ensemble_check",
]


def schema_check(path: str | os.PathLike[str], label: str) -> CheckResult:
    """Validate one product against its format (``mxt validate``)."""
    from mxt_pipeline.io import validate_file

    violations = validate_file(path)
    name = f"{label}:{Path(path).name}"
    if not violations:
        return CheckResult("schema", name, Status.PASS, "valid", {"violations": 0})
    lines = [str(v) for v in violations]
    first = violations[0]
    where = "/".join(str(x) for x in (first.hdu, getattr(first, "column", None) or getattr(first, "keyword", None)) if x)
    return CheckResult(
        "schema", name, Status.FAIL,
        f"{len(violations)} schema violation(s) in {label}, first at {where}: {first.message}",
        {"violations": len(violations)}, details="\n".join(lines),
    )  # fmt: skip


def fitsverify_check(path: str | os.PathLike[str], label: str) -> CheckResult:
    """Run fitsverify on one file; SKIP only when the program is absent."""
    from mxt_pipeline.io.fitsverify import fitsverify_available, run_fitsverify

    name = f"{label}:{Path(path).name}"
    if not fitsverify_available():
        return CheckResult("fitsverify", name, Status.SKIP, "fitsverify is not installed: check skipped")
    res = run_fitsverify(path)
    figs = {"errors": res.errors, "warnings": res.warnings}
    if res.errors:
        return CheckResult("fitsverify", name, Status.FAIL, f"fitsverify found {res.errors} error(s) in {label}", figs,
                           details=res.output[-4000:])  # fmt: skip
    status = Status.WARN if res.warnings else Status.PASS
    msg = f"{res.warnings} warning(s)" if res.warnings else "no error, no warning"
    return CheckResult("fitsverify", name, status, msg, figs, details=res.output[-2000:] if res.warnings else "")


def output_checks(paths: Iterable[Path], label: str) -> list[CheckResult]:
    """Schema and fitsverify checks of every FITS file among ``paths``."""
    out: list[CheckResult] = []
    for p in sorted(paths):
        if is_fits(p):
            out.append(schema_check(p, label))
            out.append(fitsverify_check(p, label))
    return out


# --------------------------------------------------------------------------------------
# Localization
# --------------------------------------------------------------------------------------


def truth_sources(truth: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The simulated sources of a ``truth.json`` document, as dicts with ``ra``, ``dec``,
    ``in_fov`` (default True) and a ``name``.

    Accepts ``{"sources": [{"ra":, "dec":, ...}]}`` with the keys in lower or upper
    case (``RA``/``DEC``, ``IN_FOV``).
    """
    out = []
    for i, src in enumerate(truth.get("sources") or []):
        s = {str(k).lower(): v for k, v in src.items()}
        if "ra" not in s or "dec" not in s:
            raise ValueError(f"truth source {i} has no ra/dec")
        out.append({
            "name": str(s.get("name", s.get("id", s.get("src_id", i)))),
            "ra": float(s["ra"]),
            "dec": float(s["dec"]),
            "in_fov": bool(s.get("in_fov", True)),
            "detectable": bool(s.get("detectable", True)),
        })  # fmt: skip
    return out


def localization_check(
    srclist: str | os.PathLike[str],
    truth: Mapping[str, Any] | str | os.PathLike[str],
    label: str,
    config: Mapping[str, Any],
) -> list[CheckResult]:
    """Each simulated source in the field within its R90 of the truth.

    Parameters
    ----------
    srclist : path-like
        The MXT-SOP-SKY source list (``RA``, ``DEC``, ``ERR_R90`` in arcsec).
    truth : mapping or path-like
        The dataset's truth (see :func:`truth_sources`).
    label : str
        Dataset/brick label used in the messages.
    config : mapping
        The ``localization`` section: ``r90_factor`` (a source passes when its offset
        is at most ``r90_factor * ERR_R90``), ``match_radius_arcsec`` (the nearest
        detection within it is the source's counterpart), ``max_false`` (detections
        matched to no simulated source).

    Returns
    -------
    list of CheckResult
        One per simulated source in the field, one for the false detections.
    """
    from mxt_pipeline.io import read_product

    if not isinstance(truth, Mapping):
        truth = json.loads(Path(truth).read_text(encoding="utf-8"))
    factor = float(config.get("r90_factor", 1.0))
    match_radius = float(config.get("match_radius_arcsec", 600.0))
    max_false = int(config.get("max_false", 0))
    tab = read_product(srclist, "MXT_SOP_SKY").table("SRCLIST")
    ra = np.asarray(tab["RA"], float)
    dec = np.asarray(tab["DEC"], float)
    r90 = np.asarray(tab["ERR_R90"], float)
    used = np.zeros(len(tab), bool)
    out: list[CheckResult] = []
    for src in truth_sources(truth):
        name = f"{label}:source {src['name']}"
        if not src["in_fov"]:
            continue
        if len(tab) == 0:
            status = Status.FAIL if src["detectable"] else Status.PASS
            out.append(CheckResult("localization", name, status, "no source detected" + ("" if src["detectable"] else " (not expected to be)")))
            continue
        sep = angular_separation_arcsec(src["ra"], src["dec"], ra, dec)
        j = int(np.argmin(sep))
        if sep[j] > match_radius:
            status = Status.FAIL if src["detectable"] else Status.PASS
            out.append(CheckResult(
                "localization", name, status,
                f"not detected (nearest detection {sep[j]:.0f}\" away, beyond {match_radius:.0f}\")",
                {"nearest_arcsec": float(sep[j])},
            ))  # fmt: skip
            continue
        used[j] = True
        figs = {"offset_arcsec": float(sep[j]), "err_r90_arcsec": float(r90[j]), "offset_over_r90": float(sep[j] / r90[j]) if r90[j] > 0 else math.inf}
        if sep[j] <= factor * r90[j]:
            out.append(CheckResult("localization", name, Status.PASS,
                                   f"offset {sep[j]:.1f}\" within R90 {r90[j]:.1f}\"", figs))  # fmt: skip
        else:
            out.append(CheckResult(
                "localization", name, Status.FAIL,
                f"position offset {sep[j]:.1f}\" from the truth exceeds ERR_R90 {r90[j]:.1f}\""
                + (f" x {factor}" if factor != 1 else ""), figs,
            ))  # fmt: skip
    n_false = int((~used).sum())
    if n_false > max_false:
        extra = ", ".join(f"({ra[k]:.4f}, {dec[k]:.4f})" for k in np.flatnonzero(~used)[:5])
        out.append(CheckResult("localization", f"{label}:false detections", Status.FAIL,
                               f"{n_false} detection(s) match no simulated source (at most {max_false}): {extra}",
                               {"n_false": n_false}))  # fmt: skip
    else:
        out.append(CheckResult("localization", f"{label}:false detections", Status.PASS,
                               f"{n_false} unmatched detection(s) (at most {max_false})", {"n_false": n_false}))  # fmt: skip
    return out


# --------------------------------------------------------------------------------------
# Ensemble of a campaign
# --------------------------------------------------------------------------------------


def _nominal_check(key: str, value: float, bounds: Mapping[str, Any], summary: Mapping[str, Any], label: str) -> CheckResult:
    """A proportion against its nominal value, allowing for the size of the campaign.

    ``{nominal: 0.9, level: 0.99, n: n_found}``: the measured proportion ``k/n`` (``n``
    the summary figure named by ``n``) passes when ``nominal`` lies inside its exact
    binomial interval at ``level``.  Ten sources all inside their R90 (1.0) are then as
    consistent with 90 % as nine of them are, while three of ten are not.
    """
    nominal = float(bounds["nominal"])
    level = float(bounds.get("level", 0.99))
    n_key = str(bounds.get("n", "n_found"))
    n_raw = summary.get(n_key)
    if n_raw is None:
        return CheckResult("ensemble", f"{label}:{key}", Status.FAIL, f"{key}: the campaign summary has no {n_key} to judge it by")
    n = int(n_raw)
    k = int(round(value * n))
    lo, hi = clopper_pearson(k, n, level)
    ok = n > 0 and lo <= nominal <= hi
    verb = "consistent with" if ok else "inconsistent with"
    msg = f"{key} = {value:.4g} ({k}/{n}) {verb} the nominal {nominal:g} ({level:.0%} interval [{lo:.3f}, {hi:.3f}])"
    return CheckResult("ensemble", f"{label}:{key}", Status.PASS if ok else Status.FAIL, msg,
                       {key: value, "k": k, "n": n, "nominal": nominal, "interval_lo": lo, "interval_hi": hi})  # fmt: skip


def ensemble_check(summary: Mapping[str, Any], thresholds: Mapping[str, Mapping[str, float]], label: str = "campaign") -> list[CheckResult]:
    """Compare the figures of a campaign summary with ``{name: {min:, max:}}`` bounds.

    A bound ``{nominal:, level:, n:}`` instead checks a proportion against its nominal
    value given the number of trials (:func:`_nominal_check`).

    A figure the summary lacks (or that is None/NaN, e.g. no source found) fails: an
    ensemble that cannot be measured is not a passing one.
    """
    out = []
    for key, bounds in thresholds.items():
        value = summary.get(key)
        lo, hi = bounds.get("min"), bounds.get("max")
        rng = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(CheckResult("ensemble", f"{label}:{key}", Status.FAIL, f"{key} could not be measured (expected in {rng})"))
            continue
        v = float(value)
        if "nominal" in bounds:
            out.append(_nominal_check(key, v, bounds, summary, label))
            continue
        ok = (lo is None or v >= float(lo)) and (hi is None or v <= float(hi))
        status = Status.PASS if ok else Status.FAIL
        verb = "within" if ok else "outside"
        out.append(CheckResult("ensemble", f"{label}:{key}", status, f"{key} = {v:.4g} {verb} {rng}", {key: v, "min": lo, "max": hi}))
    return out
