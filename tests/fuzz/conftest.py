"""Seeds of the fuzzer: the valid products of a golden dataset (copied, never edited)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "grb_bright"

#: name -> the valid product a fuzz case starts from.
SEEDS = {
    "l1": GOLDEN / "input/l1/mxt_l1_raw_GOLD0001_p01.fits",
    "att": GOLDEN / "input/aux/mxt_att_GOLD0001.fits",
    "ang": GOLDEN / "input/aux/mxt_ang_GOLD0001.fits",
    "saa": GOLDEN / "input/saa/mxt_saa_w496.fits",
    "l2": GOLDEN / "expected/calibrate/mxt_l2_evt_GOLD0001.fits",
    "srclist": GOLDEN / "expected/detect/mxt_sop_sky_GOLD0001.fits",
    "lc": GOLDEN / "expected/lightcurves/mxt_lc_GOLD0001_src1.fits",
}


@pytest.fixture(scope="session")
def golden_dataset(tmp_path_factory) -> Path:
    """A private copy of the golden dataset's input folder."""
    dest = tmp_path_factory.mktemp("fuzz_seed") / "input"
    shutil.copytree(GOLDEN / "input", dest)
    return dest
