"""JSON comparison with tolerances and ignored keys."""

from __future__ import annotations

import json

from harness.config import from_mapping
from harness.jsondiff import diff_json

CFG = from_mapping({"jsondiff": {"default": {"rtol": 1e-6}, "ignore_keys": ["created", "elapsed_s"],
                                 "keys": {"ra": {"atol": 1e-5}, "*_arcsec": {"rtol": 1e-3}}}})  # fmt: skip

REF = {"obs_id": "01", "created": "2025", "source": {"ra": 10.0, "dec": 20.0, "err_r90_arcsec": 30.0, "qf": 3},
       "bands": [1.0, 2.0], "detected": True, "elapsed_s": 1.5}  # fmt: skip


def _write(tmp_path, name, doc):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def test_tolerances_and_ignored_keys(tmp_path):
    ref = _write(tmp_path, "ref.json", REF)
    same = dict(REF, created="2026", elapsed_s=99.0, source=dict(REF["source"], ra=10.000009, err_r90_arcsec=30.02))
    assert diff_json(_write(tmp_path, "a.json", same), ref, CFG).identical


def test_every_difference_named(tmp_path):
    ref = _write(tmp_path, "ref.json", REF)
    bad = dict(REF, source=dict(REF["source"], ra=10.1, qf=2.0), bands=[1.0], detected=1, extra=None)
    del bad["obs_id"]
    d = diff_json(_write(tmp_path, "b.json", bad), ref, CFG)
    names = {x.name for x in d.differences}
    assert names == {"$.obs_id", "$.source.ra", "$.source.qf", "$.bands", "$.detected", "$.extra"}
    assert "$.source.ra: 10.1 vs reference 10.0" in d.account()


def test_unreadable(tmp_path):
    ref = _write(tmp_path, "ref.json", REF)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    d = diff_json(bad, ref, CFG)
    assert not d.identical and d.differences[0].kind == "file"


def test_path_keys_compare_file_names_only(tmp_path):
    cfg = from_mapping({"jsondiff": {"path_keys": ["files"]}})
    ref = _write(tmp_path, "ref.json", {"ingest": {"files": ["/a/golden/l1/p01.fits", "/a/golden/l1/p02.fits"]}, "name": "/x/y"})
    moved = _write(tmp_path, "a.json", {"ingest": {"files": ["/tmp/run/l1/p01.fits", "/tmp/run/l1/p02.fits"]}, "name": "/x/y"})
    assert diff_json(moved, ref, cfg).identical
    swapped = _write(tmp_path, "b.json", {"ingest": {"files": ["/a/golden/l1/p02.fits", "/a/golden/l1/p01.fits"]}, "name": "/x/y"})
    d = diff_json(swapped, ref, cfg)
    assert [x.name for x in d.differences] == ["$.ingest.files[0]", "$.ingest.files[1]"] and "p02.fits" in d.account()
    # Keys not declared as paths still compare the whole string.
    other = _write(tmp_path, "c.json", {"ingest": {"files": ["/a/golden/l1/p01.fits", "/a/golden/l1/p02.fits"]}, "name": "/z/y"})
    assert not diff_json(other, ref, cfg).identical
