"""Corrupted inputs through ``mxt calibrate``, ``mxt detect`` and ``mxt lightcurve``.

Each case corrupts one input of a golden dataset (an L1 pass, the attitude, the ANG or
SAA file; the L2 events; the source list) and runs the command in process.  The
acceptable outcomes are exit 0 with products that ``validate_file`` passes, or exit 2
with a one-line message (an :class:`~mxt_pipeline.errors.MXTError`).  Any other
exception escapes ``main`` and fails the test with its traceback.

These cases cost seconds each (the science runs when the corruption is accepted), so
their number is a twentieth of the profile's ``max_examples``: 3 per command in CI,
75 under ``HYPOTHESIS_PROFILE=fuzz``.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mxt_pipeline.cli.main import main
from mxt_pipeline.io import validate_file

from .conftest import SEEDS
from .mutations import apply_mutation, mutations

#: A twentieth of the profile's examples, at least 2: the commands run the science.
BUDGET = max(2, settings.default.max_examples // 20)
SETTINGS = settings(
    max_examples=BUDGET, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip

_counter = itertools.count()

#: Input files of the golden dataset a calibrate case may corrupt (relative paths).
DATASET_FILES = {
    "l1": "l1/mxt_l1_raw_GOLD0001_p01.fits",
    "att": "aux/mxt_att_GOLD0001.fits",
    "ang": "aux/mxt_ang_GOLD0001.fits",
    "saa": "saa/mxt_saa_w496.fits",
}


def _case_dir(tmp_path_factory, name: str) -> Path:
    d = tmp_path_factory.getbasetemp() / f"fuzz_{name}_{next(_counter)}"
    d.mkdir()
    return d


def _check(rc: int, err: str, products: list[Path], *, need_product: bool = True) -> None:
    assert rc in (0, 2), f"exit {rc}: {err[-2000:]}"
    assert "Traceback" not in err, err[-3000:]
    if rc == 2:
        assert err.strip(), "a refusal must say why"
        return
    assert products or not need_product, "exit 0 without any product"
    for p in products:
        assert validate_file(p) == [], f"{p.name} fails its schema"


@SETTINGS
@given(which=st.sampled_from(sorted(DATASET_FILES)), mutation=mutations())
@example(which="l1", mutation=("value", "GTI", "START", 0, 1e300))  # no event in its own GTI
@example(which="att", mutation=("rows", "ATTITUDE", "empty"))  # 0-row attitude: was a traceback
@example(which="l1", mutation=("retype", "EVENTS", "TIME", "E"))
def test_calibrate_on_corrupted_inputs(golden_dataset, tmp_path_factory, capsys, which, mutation):
    case = _case_dir(tmp_path_factory, "calibrate")
    try:
        ds = case / "input"
        shutil.copytree(golden_dataset, ds)
        target = ds / DATASET_FILES[which]
        apply_mutation(SEEDS[which], target.with_suffix(".tmp"), mutation).replace(target)
        out = case / "l2.fits"
        rc = main(["calibrate", str(ds), "--out", str(out)])
        _check(rc, capsys.readouterr().err, [out] if out.exists() else [])
    finally:
        shutil.rmtree(case, ignore_errors=True)


@SETTINGS
@given(mutation=mutations())
@example(mutation=("rows", "EVENTS", "empty"))
@example(mutation=("retype", "EVENTS", "TIME", "E"))
def test_detect_on_corrupted_events(tmp_path_factory, capsys, mutation):
    case = _case_dir(tmp_path_factory, "detect")
    try:
        l2 = apply_mutation(SEEDS["l2"], case / "l2.fits", mutation)
        out = case / "src.fits"
        rc = main(["detect", str(l2), "--out", str(out)])
        _check(rc, capsys.readouterr().err, [out] if out.exists() else [])
    finally:
        shutil.rmtree(case, ignore_errors=True)


@SETTINGS
@given(which=st.sampled_from(["l2", "srclist"]), mutation=mutations())
@example(which="srclist", mutation=("rows", "SRCLIST", "empty"))
def test_lightcurve_on_corrupted_inputs(tmp_path_factory, capsys, which, mutation):
    case = _case_dir(tmp_path_factory, "lightcurve")
    try:
        l2, src = case / "l2.fits", case / "src.fits"
        shutil.copyfile(SEEDS["l2"], l2)
        shutil.copyfile(SEEDS["srclist"], src)
        target = l2 if which == "l2" else src
        apply_mutation(SEEDS[which], target, mutation)
        out = case / "lc"
        rc = main(["lightcurve", str(l2), "--srclist", str(src), "--out", str(out)])
        err = capsys.readouterr().err
        # A source list without a source gives no light curve: a documented success.
        _check(rc, err, sorted(out.glob("*.fits")) if out.exists() else [], need_product=False)
    finally:
        shutil.rmtree(case, ignore_errors=True)


@pytest.mark.parametrize("which", sorted(DATASET_FILES))
def test_budget_follows_the_profile(which):
    assert BUDGET >= 2 and BUDGET == max(2, settings.default.max_examples // 20)
