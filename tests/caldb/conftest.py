"""Fixtures of the CALDB tests: a tiny CALDB built here, the real service on 127.0.0.1.

The tiny CALDB is made of our own small FITS files carrying the HEASARC calibration
keywords, so these tests do not depend on the bundled synthetic calibration set.
"""

from __future__ import annotations

import logging
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from mxt_pipeline.caldb import build_index

#: The token the test services accept.  Distinctive so that a leak is found by a scan.
TOKEN = "tkn-5f0c9a7e3b1d-MXT-secret-9e2"

#: Frozen creation dates so index files are reproducible inside a test run.
SOURCE_DATE_EPOCH = "1735689600"  # 2025-01-01T00:00:00Z


@dataclass(frozen=True)
class CalFile:
    """One calibration file of the tiny CALDB."""

    inst: str
    clas: str
    cnam: str
    name: str
    vsd: str
    vst: str = "00:00:00"
    cbds: tuple[tuple[str, ...], ...] = ((),)  # one tuple of CBD strings per HDU
    detnam: str | None = None

    @property
    def relpath(self) -> str:
        return f"data/svom/{self.inst.lower()}/{self.clas.lower()}/{self.cnam.lower()}/{self.name}"


#: Contents of the tiny CALDB.  TELDEF changes version on 2025-06-01T12:00:00; the PSF
#: file has one HDU per energy band; SYSERR v1 is superseded (quality 5) by v2 with the
#: same validity start; BADPIX is per detector.
TINY_FILES = (
    CalFile("MXT", "BCF", "TELDEF", "mxt_teldef_20240101_v01.fits", "2024-01-01"),
    CalFile("MXT", "BCF", "TELDEF", "mxt_teldef_20250601_v02.fits", "2025-06-01", "12:00:00"),
    CalFile("MXT", "BCF", "PSF", "mxt_psf_20240101_v01.fits", "2024-01-01",
            cbds=(("ENERGY(0.2-2)keV", "THETA(0-30)arcmin"), ("ENERGY(2-10)keV", "THETA(0-30)arcmin"))),
    CalFile("MXT", "CPF", "MATRIX", "mxt_rmf_20240101_v01.rmf", "2024-01-01"),
    CalFile("MXT", "BCF", "BADPIX", "mxt_badpix_ccd1_v01.fits", "2024-01-01", detnam="CCD1"),
    CalFile("MXT", "BCF", "SYSERR", "mxt_syserr_v01.fits", "2024-01-01"),
    CalFile("MXT", "BCF", "SYSERR", "mxt_syserr_v02.fits", "2024-01-01"),
    CalFile("ECL", "BCF", "TELDEF", "ecl_teldef_v01.fits", "2024-01-01"),
    CalFile("VT", "BCF", "TELDEF", "vt_teldef_v01.fits", "2024-03-01"),
)  # fmt: skip

#: Files superseded in the tiny CALDB.
TINY_QUALITY = {"mxt_syserr_v01.fits": 5}


def write_cal_file(root: Path, cf: CalFile, *, seed: int = 0, extra: dict | None = None) -> Path:
    """Write one small calibration FITS file with the CALDB keywords in each HDU."""
    path = root / cf.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "SVOM"
    primary.header["INSTRUME"] = cf.inst
    hdus: list = [primary]
    rng = np.random.default_rng(zlib.crc32(cf.name.encode()) + seed)
    for i, cbds in enumerate(cf.cbds):
        col = fits.Column(name="VALUE", format="D", array=rng.normal(size=4))
        hdu = fits.BinTableHDU.from_columns([col], name=f"{cf.cnam}_{i + 1}")
        h = hdu.header
        h["TELESCOP"] = "SVOM"
        h["INSTRUME"] = cf.inst
        if cf.detnam:
            h["DETNAM"] = cf.detnam
        h["CCLS0001"] = cf.clas
        h["CDTP0001"] = "DATA"
        h["CCNM0001"] = cf.cnam
        for n, cbd in enumerate(cbds, start=1):
            h[f"CBD{n}0001"] = cbd
        h["CVSD0001"] = cf.vsd
        h["CVST0001"] = cf.vst
        h["CDES0001"] = f"test {cf.cnam} {cf.name}"
        for key, value in (extra or {}).items():
            if value is None:
                del h[key]
            else:
                h[key] = value
        hdus.append(hdu)
    fits.HDUList(hdus).writeto(path, overwrite=True, checksum=True)
    return path


def make_tiny_caldb(root: Path) -> Path:
    """Write the tiny CALDB under ``root`` and index its three instruments."""
    for cf in TINY_FILES:
        write_cal_file(root, cf)
    build_index(root, "SVOM", "MXT", TINY_QUALITY)
    build_index(root, "SVOM", "ECL")
    build_index(root, "SVOM", "VT")
    return root


@pytest.fixture(autouse=True)
def _reproducible_dates(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
    # The tests pick their backend explicitly; the environment must not redirect them.
    for var in ("CALDB", "MXT_CALDB_URL", "MXT_TOKEN", "MXT_CALDB_TOKENS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def tiny_template(tmp_path_factory) -> Path:
    """The tiny CALDB, built once per session (copy it before changing it)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
    try:
        return make_tiny_caldb(tmp_path_factory.mktemp("tiny") / "caldb")
    finally:
        mp.undo()


@pytest.fixture
def tiny_caldb(tiny_template, tmp_path) -> Path:
    """A private copy of the tiny CALDB."""
    dest = tmp_path / "caldb"
    shutil.copytree(tiny_template, dest)
    return dest


@pytest.fixture(scope="module")
def served(tiny_template, tmp_path_factory) -> Iterator:
    """The real service on 127.0.0.1 (free port) over a copy of the tiny CALDB.

    Module-scoped for the read-only tests; tests that upload use ``fresh_service``.
    """
    from mxt_pipeline.caldb.service import ServiceThread

    root = tmp_path_factory.mktemp("served") / "caldb"
    shutil.copytree(tiny_template, root)
    with ServiceThread(root, [TOKEN]) as svc:
        yield svc


@pytest.fixture
def fresh_service(tiny_caldb) -> Iterator:
    """The real service over a private copy (uploads allowed)."""
    from mxt_pipeline.caldb.service import ServiceThread

    with ServiceThread(tiny_caldb, [TOKEN], max_upload_bytes=1 << 20) as svc:
        yield svc


class SleepRecorder:
    """Stands in for time.sleep: records the waits, sleeps a capped short time."""

    def __init__(self, cap: float = 0.01) -> None:
        self.waits: list[float] = []
        self.cap = cap

    def __call__(self, seconds: float) -> None:
        import time

        self.waits.append(seconds)
        time.sleep(min(seconds, self.cap))


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def files_under(root: Path) -> set[Path]:
    """Every regular file below ``root`` (relative paths)."""
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


def attach_to_service_loggers(handler: logging.Handler) -> list[logging.Logger]:
    """Also capture uvicorn's access/error loggers (they do not propagate to root)."""
    loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.access", "uvicorn.error")]
    for lg in loggers:
        lg.addHandler(handler)
    return loggers
