"""``mxt caldb serve`` as the README runs it: token variables named right, nothing
written inside the served root (the bundled CALDB lives in the source checkout)."""

from __future__ import annotations

import hashlib

import pytest
import uvicorn

from mxt_pipeline.cli.main import main


def _snapshot(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def no_server(monkeypatch):
    """uvicorn's loop replaced by a record of the application it would serve."""
    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: served.append(self.config.app))
    return served


def test_serve_keeps_its_state_outside_the_root(tiny_caldb, tmp_path, monkeypatch, no_server):
    monkeypatch.setenv("MXT_CALDB_TOKENS", "s3cret")
    monkeypatch.delenv("MXT_CALDB_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    before = _snapshot(tiny_caldb)
    assert main(["caldb", "serve", "--root", str(tiny_caldb), "--port", "8080"]) == 0
    assert len(no_server) == 1
    assert _snapshot(tiny_caldb) == before and not (tiny_caldb / ".caldb_service").exists()
    [state] = (tmp_path / "state" / "mxt").iterdir()
    assert (state / "caldb.sqlite").is_file()
    # --state-dir wins over the default.
    assert main(["caldb", "serve", "--root", str(tiny_caldb), "--state-dir", str(tmp_path / "st2")]) == 0
    assert (tmp_path / "st2" / "caldb.sqlite").is_file() and _snapshot(tiny_caldb) == before


def test_serve_without_tokens_names_the_service_variable(tiny_caldb, tmp_path, monkeypatch, capsys, no_server):
    monkeypatch.delenv("MXT_CALDB_TOKENS", raising=False)
    monkeypatch.setenv("MXT_CALDB_STATE_DIR", str(tmp_path / "st"))
    assert main(["caldb", "serve", "--root", str(tiny_caldb)]) == 2
    err = capsys.readouterr().err
    assert "MXT_CALDB_TOKENS" in err and "--token-file" in err and "Traceback" not in err
    assert "MXT_TOKEN is the client's variable" in err
    assert not no_server


def test_client_without_token_speaks_of_options_not_arguments(monkeypatch, capsys):
    monkeypatch.delenv("MXT_TOKEN", raising=False)
    assert main(["caldb", "search", "MXT", "psf", "--url", "http://127.0.0.1:9", "--max-tries", "1"]) == 2
    err = capsys.readouterr().err
    assert "MXT_TOKEN" in err and "--runtime-data" in err and "--no-token" in err
    assert "token=" not in err and "use_tokens" not in err


def test_upload_across_file_systems_lands_atomically(tiny_caldb, tmp_path, monkeypatch):
    """A state folder on another file system: the staged upload is copied beside its
    final place, then renamed (os.replace raising EXDEV is what such a rename does)."""
    import errno
    import os

    from mxt_pipeline.services import files as files_mod

    real = os.replace
    calls = []

    def replace(src, dst):
        if str(src).startswith(str(tmp_path / "state")):
            calls.append(dst)
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(src, dst)

    monkeypatch.setattr(files_mod.os, "replace", replace)
    final = tmp_path / "final" / "x.fits"
    final.parent.mkdir()
    staged = tmp_path / "state" / "staging" / "upload.part"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"calibration")
    files_mod.move_into_place(staged, final)
    assert calls == [final] and final.read_bytes() == b"calibration" and not staged.exists()
    assert sorted(p.name for p in final.parent.iterdir()) == ["x.fits"]
