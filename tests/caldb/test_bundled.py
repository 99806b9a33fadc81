"""The bundled synthetic CALDB (``fixtures_caldb/``): every MXT code name is served.

Skipped while the bundled set is not there yet.
"""

from __future__ import annotations

import shutil

import pytest

from mxt_pipeline.caldb import CaDBIO, read_cif, scan_calibration_files
from mxt_pipeline.datapaths import bundled_caldb_dir
from mxt_pipeline.io import validate_file

from .conftest import TOKEN, SleepRecorder

#: Code names the MXT tasks need (issue 3).
MXT_CODE_NAMES = (
    "TELDEF", "PSF", "EFFAREA", "VIGNET", "MATRIX", "CTI", "GAINOFF", "MULTIPLICITY", "BADPIX",
    "PATTERN", "SYSERR",
)  # fmt: skip

BUNDLED = bundled_caldb_dir()
MXT_INDEX = BUNDLED / "data/svom/mxt/caldb.indx"



def index_files():
    return sorted(BUNDLED.glob("data/svom/*/caldb.indx"))


def test_bundled_indexes_are_valid(fitsverify):
    for path in index_files():
        result = fitsverify(path)
        assert result.errors == 0, result.output
        assert validate_file(path) == [], path


def test_bundled_index_matches_the_files():
    """The committed index is what build_index makes of the files (qualities aside)."""
    for path in index_files():
        inst = path.parent.name.upper()
        indexed = read_cif(path)
        scanned = scan_calibration_files(BUNDLED, "SVOM", inst)

        def key(r):
            return (r.relpath, r.cal_xno, r.cal_cnam, r.cal_cbd, r.ref_time, r.detnam, r.filter)

        assert sorted(map(key, indexed)) == sorted(map(key, scanned)), inst
        for r in indexed:
            assert (BUNDLED / r.relpath).is_file(), r.relpath


@pytest.mark.parametrize("codename", MXT_CODE_NAMES)
def test_every_mxt_code_name_locally(codename):
    client = CaDBIO()  # no $CALDB, no $MXT_CALDB_URL (conftest): the bundled set
    assert client.backend.root == BUNDLED
    paths = client.search("MXT", codename.lower())
    assert paths and all(p.is_file() for p in paths)


@pytest.fixture(scope="module")
def bundled_service(tmp_path_factory):
    from mxt_pipeline.caldb.service import ServiceThread

    root = tmp_path_factory.mktemp("bundled") / "caldb"
    shutil.copytree(BUNDLED, root)  # the service adds its state folder: never in the repository
    with ServiceThread(root, [TOKEN]) as svc:
        yield svc


def test_every_mxt_code_name_through_the_service(bundled_service, tmp_path):
    with CaDBIO(url=bundled_service.url, token=TOKEN, sleep=SleepRecorder()) as client:
        for codename in MXT_CODE_NAMES:
            entries = client.entries("MXT", codename)
            assert entries, codename
            for e in entries:
                local = client.backend.fetch(e, tmp_path / codename)
                assert local.read_bytes() == (BUNDLED / e.relpath).read_bytes()
