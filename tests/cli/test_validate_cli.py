"""`mxt validate` lists every violation of a broken file and exits non-zero."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from astropy.io import fits

from mxt_pipeline.cli.main import main
from mxt_pipeline.datamodel import GTI, RawHits
from mxt_pipeline.io.products import write_raw_hits


def _valid_l1(path):
    n = 20
    hits = RawHits.from_columns(
        meta={"OBS_ID": "1", "PASS_ID": 1, "STATION": "HBK"},
        TIME=np.arange(n) * 0.1,
        FRAME=np.arange(n),
        RAWY=np.arange(n),
        RAWZ=np.arange(n),
        PHA=np.full(n, 500),
    )
    hits.gti = GTI([0.0], [2.0])
    return write_raw_hits(path, hits)


def _break(src, dst):
    """Three independent faults: an unsorted time, an illegal RAWZ, a missing keyword."""
    with fits.open(src) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
    ev = hdul["EVENTS"].data
    ev["TIME"][5] = 100.0
    ev["RAWZ"][7] = 999
    del hdul[0].header["STATION"]
    hdul.writeto(dst, checksum=True)
    return dst


def test_valid_file_passes(tmp_path, capsys):
    path = _valid_l1(tmp_path / "ok.fits")
    assert main(["validate", str(path)]) == 0
    assert "OK" in capsys.readouterr().out


def test_broken_file_lists_every_violation(tmp_path, capsys):
    good = _valid_l1(tmp_path / "ok.fits")
    bad = _break(good, tmp_path / "bad.fits")
    rc = main(["validate", str(good), str(bad)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "3 violation(s)" in out
    assert "[EVENTS] column TIME" in out and "sorted" in out
    assert "[EVENTS] column RAWZ" in out and "999" in out
    assert "keyword STATION" in out
    assert f"{good}: OK" in out


def test_console_script_exit_status(tmp_path):
    bad = _break(_valid_l1(tmp_path / "ok.fits"), tmp_path / "bad.fits")
    proc = subprocess.run(
        [sys.executable, "-m", "mxt_pipeline.cli.main", "validate", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "violation" in proc.stdout


def test_unreadable_file_is_a_violation(tmp_path, capsys):
    p = tmp_path / "junk.fits"
    p.write_bytes(b"\0" * 100)
    assert main(["validate", str(p)]) == 1
    assert "not a readable FITS file" in capsys.readouterr().out


def test_version_and_help(capsys):
    from mxt_pipeline import __version__

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert "validate" in capsys.readouterr().out
