"""Value checks run at the product boundary: on writing, and on reading a file this
process did not write (or that changed since it wrote it); not on reading back its own
checked product."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits

import mxt_pipeline.io.validate as validate_mod
from mxt_pipeline.datamodel import GTI, RawHits
from mxt_pipeline.errors import MXTSchemaError
from mxt_pipeline.io.fits import forget_checked, read_product
from mxt_pipeline.io.products import write_raw_hits


@pytest.fixture
def count_checks(monkeypatch):
    calls = []
    real = validate_mod.raise_for_violations

    def counting(product, spec):
        calls.append(str(product.path))
        return real(product, spec)

    monkeypatch.setattr(validate_mod, "raise_for_violations", counting)
    return calls


def _write_raw(path, rawy=None):
    n = 5
    hits = RawHits.from_columns(
        meta={"OBS_ID": "1", "PASS_ID": 2, "STATION": "KRN"},
        TIME=np.arange(n, dtype=float),
        FRAME=np.arange(n),
        RAWY=np.arange(n) * 10 if rawy is None else np.asarray(rawy),
        RAWZ=np.arange(n) + 5,
        PHA=np.arange(n) * 100,
    )
    hits.gti = GTI([0.0], [10.0])
    return write_raw_hits(path, hits)


def test_written_product_is_checked_once(tmp_path, count_checks):
    path = _write_raw(tmp_path / "raw.fits")
    assert count_checks == [str(path)]  # at the write
    read_product(path, "MXT_L1_RAW")
    read_product(path, "MXT_L1_RAW")
    assert count_checks == [str(path)]  # not again on reading it back


def test_foreign_and_changed_files_are_checked(tmp_path, count_checks):
    path = _write_raw(tmp_path / "raw.fits")
    copy = tmp_path / "copy.fits"
    shutil.copy(path, copy)  # another file: not written by this process
    read_product(copy, "MXT_L1_RAW")
    assert count_checks[-1] == str(copy)
    # The written file rewritten by someone else (valid checksums, a value out of range):
    with fits.open(path) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
    hdul["EVENTS"].data["RAWY"][1] = 300
    hdul.writeto(path, checksum=True, overwrite=True)
    with pytest.raises(MXTSchemaError) as info:
        read_product(path, "MXT_L1_RAW")
    assert any(v.column == "RAWY" for v in info.value.violations)


def test_forget_checked_restores_checks(tmp_path, count_checks):
    path = _write_raw(tmp_path / "raw.fits")
    forget_checked()
    read_product(path, "MXT_L1_RAW")
    assert count_checks == [str(path), str(path)]


def test_invalid_values_are_refused_at_the_write(tmp_path):
    target = tmp_path / "bad.fits"
    with pytest.raises(MXTSchemaError) as info:
        _write_raw(target, rawy=[10, 999, 30, 40, 50])
    assert any(v.column == "RAWY" for v in info.value.violations)
    assert not target.exists() and list(tmp_path.iterdir()) == []
