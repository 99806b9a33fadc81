"""The synthetic calibration set: reproducible bytes, valid files, epochs selected by date."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from astropy.io import fits

from mxt_pipeline import constants as C
from mxt_pipeline.caldb import CaDBIO, read_cif
from mxt_pipeline.caldb.products import CODE_NAMES, CalibrationSet
from mxt_pipeline.caldb.synthetic import MXT_FILES, generate
from mxt_pipeline.caldb.synthetic import model as M
from mxt_pipeline.datapaths import bundled_caldb_dir
from mxt_pipeline.errors import MXTCaldbNotFound, MXTInputError
from mxt_pipeline.io import validate_file

BUNDLED = bundled_caldb_dir()


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    root = tmp_path_factory.mktemp("regen") / "caldb"
    generate(root)
    return root


def test_regenerating_gives_the_committed_bytes(regenerated):
    """Every committed file is what the generator writes today, byte for byte.

    The indexes carry CREATOR with the package version (written by the CIF writer): if
    the version changed since the set was committed, they are compared without it.
    """
    assert _files(regenerated) == _files(BUNDLED)
    for rel in _files(BUNDLED):
        new, old = (regenerated / rel).read_bytes(), (BUNDLED / rel).read_bytes()
        if new == old:
            continue
        assert "caldb.indx" in rel, f"{rel} differs from a fresh generation: rerun the generator"
        diff = fits.FITSDiff(str(regenerated / rel), str(BUNDLED / rel),
                             ignore_keywords=["CREATOR", "CHECKSUM", "DATASUM"])  # fmt: skip
        assert diff.identical, diff.report()


def test_generator_refuses_to_overwrite_without_force(regenerated):
    with pytest.raises(MXTInputError, match="--force"):
        generate(regenerated)


def test_every_file_passes_fitsverify_and_validate(fitsverify):
    fits_files = [p for p in BUNDLED.rglob("*") if p.is_file() and p.suffix in (".fits", ".arf", ".rmf")]
    assert len(fits_files) == len(MXT_FILES)
    for path in fits_files:
        result = fitsverify(path)
        assert result.errors == 0 and result.warnings == 0, result.output
        violations = validate_file(path)
        # the formats fix INSTRUME='MXT'; the ECL and VT nodes share the TELDEF format
        if "/mxt/" not in path.as_posix():
            violations = [v for v in violations if v.keyword != "INSTRUME"]
        assert violations == [], path


def test_bundled_set_is_small():
    total = sum(p.stat().st_size for p in BUNDLED.rglob("*") if p.is_file())
    assert total < 5e6


def test_index_lists_versions_nodes_and_the_upload():
    rows = read_cif(BUNDLED / "data/svom/mxt/caldb.indx")
    by_code = {}
    for r in rows:
        by_code.setdefault(r.cal_cnam, []).append(r.cal_vsd)
    assert set(CODE_NAMES) | {"EBOUNDS", "THRESHOLDS"} == set(by_code)
    assert sorted(by_code["GAINOFF"]) == ["2024-06-22", "2025-06-01"]
    assert sorted(by_code["TELDEF"]) == ["2024-06-22", "2024-10-01"]
    assert all(r.cal_qual == 0 for r in rows)
    for inst in ("ecl", "vt"):
        (row,) = read_cif(BUNDLED / f"data/svom/{inst}/caldb.indx")
        assert row.cal_cnam == "TELDEF" and row.instrume == inst.upper()


@pytest.mark.parametrize(
    "when,versions",
    [
        (datetime(2024, 7, 1), {"TELDEF": 1, "GAINOFF": 1, "CTI": 1, "BADPIX": 1}),
        (datetime(2025, 1, 1), {"TELDEF": 2, "GAINOFF": 1, "CTI": 1, "BADPIX": 1}),
        (datetime(2025, 6, 1, 0, 0, 1), {"TELDEF": 2, "GAINOFF": 2, "CTI": 2, "BADPIX": 2}),
        (3.0e8, {"TELDEF": 2, "GAINOFF": 2, "CTI": 2, "BADPIX": 2}),  # mission time, 2026-07-05
    ],
)
def test_from_caldb_selects_the_epoch(when, versions):
    cs = CalibrationSet.from_caldb(CaDBIO(), when)
    assert set(cs.codes) == set(CODE_NAMES)
    for code, v in versions.items():
        assert cs.files[code].endswith(f"_v{v:02d}.fits"), cs.files[code]
    late = versions["GAINOFF"] == 2
    np.testing.assert_array_equal(cs.gainoff.gain, M.gainoff_model(1 if late else 0).gain)
    assert float(cs.cti.cti(1.5)) == pytest.approx(M.CTI_15[1 if late else 0], rel=1e-6)
    assert len(cs.badpix) == (27 if late else 22)
    assert tuple(cs.teldef.offset) == ((0.6, -0.4) if versions["TELDEF"] == 2 else (0.0, 0.0))


def test_from_caldb_accepts_a_root_and_a_subset(tmp_path):
    cs = CalibrationSet.from_caldb(str(BUNDLED), "2025-03-01", codes=("gainoff", "syserr"))
    assert cs.codes == ["GAINOFF", "SYSERR"] and cs.psf is None
    assert cs["gainoff"] is cs.gainoff
    with pytest.raises(MXTCaldbNotFound, match="GAINOFF"):
        CalibrationSet.from_caldb(str(BUNDLED), "2024-01-01", codes=("GAINOFF",))


def test_in_memory_set_equals_the_files():
    files = CalibrationSet.from_caldb(None, "2025-01-01")
    memory = CalibrationSet.synthetic("2025-01-01")
    for code in CODE_NAMES:
        a, b = getattr(files, code.lower()).to_tables(), getattr(memory, code.lower()).to_tables()
        for ext in a:
            for col in a[ext]:
                x, y = np.asarray(a[ext][col]), np.asarray(b[ext][col])
                np.testing.assert_allclose(x.astype(float), y.astype(float), rtol=1e-6, err_msg=f"{code} {col}")


def test_documented_instrument_facts():
    """The set matches the public facts it is built from (docs/caldb.md)."""
    cs = CalibrationSet.synthetic()
    assert cs.teldef.focal_mm == C.FOCAL_LENGTH_MM and cs.teldef.pixel_mm == C.PIXEL_SIZE_MM
    assert cs.teldef.pixel_scale_arcsec == pytest.approx(13.57, abs=0.01)
    assert cs.psf.fwhm_spot(1.5) * C.PIXEL_SCALE_ARCSEC / 60 == pytest.approx(M.SPOT_FWHM_ARCMIN, rel=1e-4)
    assert cs.effarea.energ_lo[0] == pytest.approx(0.2) and cs.effarea.energ_hi[-1] == pytest.approx(10.0)
    assert float(cs.matrix.fwhm(1.5)) < 0.080
    assert cs.syserr.localization_arcsec == 25.0
