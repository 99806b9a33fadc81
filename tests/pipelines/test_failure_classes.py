"""Every failure of a run maps to its documented status: disk full, unusable output
folder, blank or malformed token, expired token.

Each test failed before its fix (INTERNAL_ERROR, a traceback with the status left at
RUNNING, or CALDB_UNAVAILABLE for a token that could never be sent).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.pipelines import execute as execute_mod
from mxt_pipeline.pipelines.collection import StagingArea
from mxt_pipeline.pipelines.execute import execute
from mxt_pipeline.pipelines.status import (
    EXIT_CODES,
    ProcessingStatus,
    read_status,
    status_for_exception,
)
from mxt_pipeline.services.tokens import Secret, resolve_token

from .toybricks import make_request

S = ProcessingStatus
ROOT = Path(__file__).resolve().parents[2]


def test_output_error_has_its_own_exit_code():
    assert S.OUTPUT_ERROR.exit_code == 15
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)  # every status its own code


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS])
def test_disk_full_maps_to_output_error_in_every_phase(code):
    exc = OSError(code, os.strerror(code))
    for phase in ("inputs", "preflight", "bricks", "publish", "core"):
        assert status_for_exception(exc, phase) is S.OUTPUT_ERROR
    wrapped = MXTInputError("cannot write product")
    wrapped.__cause__ = exc
    assert status_for_exception(wrapped, "core") is S.OUTPUT_ERROR
    assert status_for_exception(OSError(errno.ENOENT, "x"), "core") is S.INTERNAL_ERROR


def test_disk_full_in_the_journal_writes_output_error(tmp_path, toy, toy_obs, toy_caldb, monkeypatch):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(StagingArea, "record", full)
    out = tmp_path / "out"
    outcome = execute(make_request(toy_obs, out, toy_caldb), pipeline=toy)
    assert outcome.exit_code == 15
    st = read_status(out)
    assert st.status is S.OUTPUT_ERROR and "No space left" in st.reason["message"]


def test_when_even_the_status_cannot_be_written_the_previous_is_kept(tmp_path, toy, toy_obs, toy_caldb,
                                                                     monkeypatch):  # fmt: skip
    real = execute_mod.write_status

    def record(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    def status_writer(folder, rec, **kw):
        if rec.status is not S.RUNNING:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(folder, rec, **kw)

    monkeypatch.setattr(StagingArea, "record", record)
    monkeypatch.setattr(execute_mod, "write_status", status_writer)
    out = tmp_path / "out"
    outcome = execute(make_request(toy_obs, out, toy_caldb), pipeline=toy)  # no exception escapes
    assert outcome.exit_code == 15
    assert read_status(out).status is S.RUNNING  # the previous file, whole and readable


_FSIZE_CHILD = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[4]), int(sys.argv[4])))
from tests.pipelines.run_toy import main
sys.exit(main(sys.argv[1:4]))
"""


def test_file_size_limit_while_writing_products_is_output_error(tmp_path, toy_obs, toy_caldb):
    """``ulimit -f`` (EFBIG) in a real process: exit 15 and OUTPUT_ERROR in the status."""
    out = tmp_path / "out"
    limit = 2500  # the status file fits, the event samples do not
    proc = subprocess.run(
        [sys.executable, "-c", _FSIZE_CHILD, str(tmp_path / "obs"), str(out), str(tmp_path / "caldb"), str(limit)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 15, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    st = json.loads((out / "processing_status.json").read_text())
    assert st["status"] == "OUTPUT_ERROR" and st["exit_code"] == 15


@pytest.mark.parametrize("kind", ["file", "proc", "under_file"])
def test_unusable_output_folder_is_bad_input(tmp_path, toy, toy_obs, toy_caldb, kind):
    if kind == "file":
        out = tmp_path / "out"
        out.write_text("not a folder")
    elif kind == "proc":
        out = Path("/proc/mxt_output")
    else:
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "out"
    outcome = execute(make_request(toy_obs, out, toy_caldb), pipeline=toy)
    assert outcome.status.status is S.BAD_INPUT and outcome.exit_code == 10
    assert outcome.status.reason["keyword"] == "output_dir"
    assert "output folder cannot be used" in outcome.status.reason["message"]


# ------------------------------------------------------------------ tokens


@pytest.mark.parametrize("raw", ["tok-123\n", "  tok-123  ", "\ttok-123\r\n"])
def test_tokens_are_stripped(tmp_path, raw, monkeypatch):
    monkeypatch.delenv("MXT_TOKEN", raising=False)
    rd = tmp_path / "runtime_data.json"
    rd.write_text(json.dumps({"token": raw}))
    assert resolve_token(runtime_data=rd) == "tok-123"
    assert Secret(raw).reveal() == "tok-123"
    monkeypatch.setenv("MXT_TOKEN", raw)
    assert resolve_token() == "tok-123"


@pytest.mark.parametrize(("raw", "problem"), [("   ", "is blank"), ("\n", "is blank"),
                                              ("tok 123", "blanks or control"), ("tok\x00x", "blanks or control")])  # fmt: skip
def test_blank_or_malformed_token_is_refused_by_name(tmp_path, raw, problem, monkeypatch):
    monkeypatch.delenv("MXT_TOKEN", raising=False)
    rd = tmp_path / "runtime_data.json"
    rd.write_text(json.dumps({"token": raw}))
    with pytest.raises(MXTInputError, match=problem) as info:
        resolve_token(runtime_data=rd)
    assert "'token'" in str(info.value) and str(rd) in str(info.value)
    assert status_for_exception(info.value, "runtime") is S.BAD_INPUT
