"""Processing statuses: mapping from errors and phases, exit codes, the status file."""

from __future__ import annotations

import json

import pytest

from mxt_pipeline import errors as E
from mxt_pipeline.pipelines.brick import BrickResult, BrickStatus, ErrorInfo
from mxt_pipeline.pipelines.status import (
    EXIT_CODES,
    Interrupted,
    ProcessingStatus,
    StatusRecord,
    read_status,
    status_for_exception,
    status_of_bricks,
    write_status,
)

S = ProcessingStatus

CASES = [
    (E.MXTServiceUnavailable("down"), "preflight", S.CALDB_UNAVAILABLE),
    (E.MXTServiceUnavailable("down"), "caldb", S.CALDB_UNAVAILABLE),
    (E.MXTServiceUnavailable("down"), "inputs", S.SERVICE_UNAVAILABLE),
    (E.MXTAuthError("401"), "preflight", S.AUTH_FAILED),
    (E.MXTAuthError("403"), "inputs", S.AUTH_FAILED),
    (E.MXTServiceError("400"), "caldb", S.CALDB_ERROR),
    (E.MXTServiceError("400"), "inputs", S.BAD_INPUT),
    (E.MXTCaldbNotFound("none"), "preflight", S.CALDB_ERROR),
    (E.MXTCaldbAmbiguous("two"), "caldb", S.CALDB_ERROR),
    (E.MXTCalibrationError("out of range"), "core", S.CALDB_ERROR),
    (E.MXTFormatError("truncated"), "inputs", S.BAD_INPUT),
    (E.MXTSchemaError("bad", ["x"]), "runtime", S.BAD_INPUT),
    (E.MXTFormatError("truncated"), "caldb", S.CALDB_ERROR),
    (E.MXTInputError("empty"), "core", S.BAD_INPUT),
    (E.MXTPipelineError("wiring"), "inputs", S.INTERNAL_ERROR),
    (ValueError("bug"), "core", S.INTERNAL_ERROR),
    (KeyboardInterrupt(), "core", S.INTERRUPTED),
    (Interrupted(15), None, S.INTERRUPTED),
]


@pytest.mark.parametrize(("exc", "phase", "expected"), CASES)
def test_status_for_exception(exc, phase, expected):
    assert status_for_exception(exc, phase) is expected


def test_exit_codes_are_distinct_and_avoid_python_and_click():
    codes = [c for s, c in EXIT_CODES.items() if s is not S.RUNNING]
    assert len(set(codes)) == len(codes) == len(S) - 1
    assert EXIT_CODES[S.SUCCESS] == 0
    assert not {1, 2} & set(codes)
    assert all(0 <= c < 126 for c in codes)
    assert {s for s in S if s.published} == {S.SUCCESS, S.PARTIAL, S.NO_DATA}


def _res(name, status, critical=True, exc=None, phase="core"):
    r = BrickResult(name, status, critical=critical)
    if exc is not None:
        r.exception = exc
        r.error = ErrorInfo.from_exception(exc, phase)
    return r


def test_status_of_bricks_precedence():
    ok = _res("a", BrickStatus.SUCCESS)
    assert status_of_bricks([ok, ok]) is S.SUCCESS
    assert status_of_bricks([ok, _res("b", BrickStatus.NO_DATA)]) is S.NO_DATA
    assert status_of_bricks([_res("b", BrickStatus.NO_DATA), _res("c", BrickStatus.DEGRADED)]) is S.PARTIAL
    assert status_of_bricks([ok, _res("p", BrickStatus.FAILED, critical=False, exc=RuntimeError())]) is S.PARTIAL
    down = _res("c", BrickStatus.FAILED, exc=E.MXTServiceUnavailable("x"), phase="caldb")
    assert status_of_bricks([ok, down, _res("d", BrickStatus.SKIPPED)]) is S.CALDB_UNAVAILABLE


def test_status_from_a_recorded_error_without_the_exception():
    r = BrickResult.from_dict(_res("c", BrickStatus.FAILED, exc=E.MXTFormatError("bad", file="f.fits"), phase="inputs").to_dict())
    assert r.exception is None
    assert status_of_bricks([r]) is S.BAD_INPUT


def test_status_file_round_trip_and_redaction(tmp_path):
    secret = "tok-very-secret-123"
    rec = StatusRecord(S.CALDB_UNAVAILABLE, pipeline="xband-gp", obs_id="0001",
                       stopped_at={"phase": "preflight"}, reason={"message": f"GET with {secret} failed"})  # fmt: skip
    path = write_status(tmp_path, rec, redact=[secret])
    text = path.read_text()
    assert secret not in text and "***" in text
    doc = json.loads(text)
    assert doc["status"] == "CALDB_UNAVAILABLE" and doc["exit_code"] == 12
    back = read_status(tmp_path)
    assert back.status is S.CALDB_UNAVAILABLE and back.stopped_at == {"phase": "preflight"}
    assert json.loads(write_status(tmp_path, StatusRecord(S.RUNNING)).read_text())["exit_code"] is None
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary file
