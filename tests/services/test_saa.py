"""SAA files of the science database by week, from a folder or a URL (token, retries)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from mxt_pipeline.calib.screening import saa_bad_time
from mxt_pipeline.datamodel import GTI, SAAIntervals
from mxt_pipeline.errors import MXTAuthError, MXTInputError
from mxt_pipeline.io.products import write_saa
from mxt_pipeline.services.saa import SAAArchive

WEEK = 604800.0


@pytest.fixture
def saa_folder(tmp_path):
    for week in (10, 11):
        s = SAAIntervals.from_columns(START=np.array([week * WEEK + 100.0]), STOP=np.array([week * WEEK + 700.0]))
        write_saa(tmp_path / f"mxt_saa_w{week}.fits", s, week)
    return tmp_path


def test_saa_from_folder_by_week(saa_folder):
    arch = SAAArchive(saa_folder)
    lst = arch.for_range(10 * WEEK + 50.0, 11 * WEEK + 1000.0)
    bad = saa_bad_time(lst)
    assert bad == GTI([10 * WEEK + 100.0, 11 * WEEK + 100.0], [10 * WEEK + 700.0, 11 * WEEK + 700.0])
    with pytest.raises(MXTInputError, match="week 12") as err:
        arch.for_range(12 * WEEK, 12 * WEEK + 1.0)
    assert err.value.file.endswith("mxt_saa_w12.fits")


def test_saa_from_url_with_token_and_retry(saa_folder, tmp_path):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.headers.get("Authorization") != "Bearer s3cret":
            return httpx.Response(401, json={"detail": "bad token"})
        if len(calls) == 1:
            return httpx.Response(503)
        name = request.url.path.rsplit("/", 1)[-1]
        path = saa_folder / name
        if not path.exists():
            return httpx.Response(404)
        return httpx.Response(200, content=path.read_bytes(), headers={"Content-Disposition": f'attachment; filename="{name}"'})

    arch = SAAArchive(url="http://sdb.test/saa", token="s3cret", cache_dir=tmp_path / "cache",
                      transport=httpx.MockTransport(handler), sleep=lambda s: None)  # fmt: skip
    with arch:
        lst = arch.for_range(10 * WEEK, 10 * WEEK + 10.0)
    assert saa_bad_time(lst) == GTI([10 * WEEK + 100.0], [10 * WEEK + 700.0])
    assert calls == ["/saa/mxt_saa_w10.fits", "/saa/mxt_saa_w10.fits"]  # one 503, retried
    assert "s3cret" not in repr(arch)
    bad = SAAArchive(url="http://sdb.test/saa", token="wrong", cache_dir=tmp_path / "c2",
                     transport=httpx.MockTransport(handler), sleep=lambda s: None)  # fmt: skip
    calls.clear()
    with pytest.raises(MXTAuthError):
        bad.for_range(10 * WEEK, 10 * WEEK + 10.0)
    assert len(calls) == 1  # no retry on 401


def test_archive_needs_one_source():
    with pytest.raises(MXTInputError):
        SAAArchive()
    with pytest.raises(MXTInputError):
        SAAArchive("x", url="http://y")
