"""``mxt caldb search|download|upload|index|serve``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner

from mxt_pipeline.caldb import CaDBIO, read_cif
from mxt_pipeline.cli.caldb import command
from mxt_pipeline.errors import MXTCaldbNotFound

from .conftest import TOKEN, SleepRecorder


def run(*args, **kw):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=kw.pop("catch", False), **kw)


def test_search_local(tiny_caldb):
    res = run("search", "MXT", "psf", "--root", tiny_caldb, "--expr", "energy.eq.5")
    assert res.exit_code == 0
    assert "data/svom/mxt/bcf/psf/mxt_psf_20240101_v01.fits[2]" in res.output
    assert "ENERGY(2-10)keV" in res.output
    res = run("search", "MXT", "teldef", "--root", tiny_caldb, "--date", "2025-01-01", "--json")
    [row] = json.loads(res.output)
    assert row["cif"]["CAL_FILE"] == "mxt_teldef_20240101_v01.fits" and row["type"] == "bcf"


def test_search_not_found_is_an_mxt_error(tiny_caldb):
    res = run("search", "MXT", "teldef", "--root", tiny_caldb, "--date", "2019-01-01", catch=True)
    assert isinstance(res.exception, MXTCaldbNotFound)


def test_download_and_index_and_upload_local(tiny_caldb, tmp_path):
    res = run("download", "MXT", "teldef", "--root", tiny_caldb, "-o", tmp_path / "out")
    assert res.exit_code == 0
    assert res.output.strip() == str(tmp_path / "out" / "mxt_teldef_20250601_v02.fits")
    res = run("index", "--root", tiny_caldb, "--instrument", "MXT", "--quality", "mxt_syserr_v01.fits=5",
              "--quality", "mxt_teldef_20250601_v02.fits=5")  # fmt: skip
    assert res.exit_code == 0
    bad = {r.cal_file for r in read_cif(tiny_caldb / "data/svom/mxt/caldb.indx") if r.cal_qual == 5}
    assert bad == {"mxt_syserr_v01.fits", "mxt_teldef_20250601_v02.fits"}
    res = run("index", "--root", tiny_caldb, "--instrument", "MXT", "--instrument", "ECL", "--quality", "x=5",
              catch=True)  # fmt: skip
    assert res.exit_code == 2 and "single --instrument" in res.output
    y = tmp_path / "ECL_GRBTRIG_20250101T000000_v01.yaml"
    y.write_text("snr_threshold: 6.5\n")
    res = run("upload", y, "--root", tiny_caldb)
    assert res.exit_code == 0 and json.loads(res.output)["type"] == "onboard"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command_end_to_end(tiny_caldb, tmp_path):
    """``mxt caldb serve`` in a subprocess, driven by CaDBIO and by ``mxt caldb download``."""
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(TOKEN + "\n")
    tokens.chmod(0o600)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MXT_")}
    env["MXT_CALDB_STATE_DIR"] = str(tmp_path / "service-state")  # not the user's ~/.local/state
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mxt_pipeline.cli.main", "-v", "caldb", "serve", "--root", str(tiny_caldb),
             "--host", "127.0.0.1", "--port", str(port), "--token-file", str(tokens), "--log-level", "debug"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "service did not start"
            time.sleep(0.1)
        with CaDBIO(url=url, token=TOKEN, sleep=SleepRecorder()) as c:
            assert [p.name for p in c.search("VT", "teldef", tmp_path / "dl")] == ["vt_teldef_v01.fits"]
        rd = tmp_path / "runtime_data.json"
        rd.write_text(json.dumps({"token": TOKEN}))
        res = run("download", "MXT", "matrix", "--url", url, "--runtime-data", rd, "-o", tmp_path / "dl2")
        assert res.exit_code == 0 and res.output.strip().endswith("mxt_rmf_20240101_v01.rmf")
        assert TOKEN not in res.output
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    text = log.read_text()
    assert "GET /api/v1/search" in text  # the access log is there ...
    assert TOKEN not in text  # ... without the token


def test_serve_refuses_without_tokens(tiny_caldb, monkeypatch):
    from mxt_pipeline.cli.main import main

    monkeypatch.delenv("MXT_CALDB_TOKENS", raising=False)
    assert main(["caldb", "serve", "--root", str(tiny_caldb), "--port", "0"]) == 2


@pytest.mark.parametrize("sub", ["search", "download", "upload", "index", "serve"])
def test_help(sub):
    assert run(sub, "--help").exit_code == 0
