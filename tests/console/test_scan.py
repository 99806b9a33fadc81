"""Scanning of the output root and the path guard of the console."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.console.scan import NotServed, RootScanner, read_sources, resolve_inside
from tests.console.fakeroot import make_collection, make_failed_output, make_root, write_srclist


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    (r / "inside.txt").write_text("ok")
    (tmp_path / "secret.txt").write_text("outside")
    return r.resolve()


def test_resolve_inside_accepts_files_of_the_root(root):
    assert resolve_inside(root, "inside.txt") == root / "inside.txt"
    assert resolve_inside(root, "./inside.txt") == root / "inside.txt"


@pytest.mark.parametrize("bad", ["../secret.txt", "a/../../secret.txt", "/etc/passwd", "..", "\\etc\\passwd",
                                 "inside.txt\x00", ".staging/x", "sub/.lock"])  # fmt: skip
def test_resolve_inside_refuses_escapes_and_internals(root, bad):
    with pytest.raises(NotServed):
        resolve_inside(root, bad)


def test_resolve_inside_refuses_a_symlink_leaving_the_root(root, tmp_path):
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    os.symlink(tmp_path, root / "linkdir")
    with pytest.raises(NotServed, match="not inside"):
        resolve_inside(root, "link.txt")
    with pytest.raises(NotServed, match="not inside"):
        resolve_inside(root, "linkdir/secret.txt")


def test_resolve_inside_follows_a_symlink_staying_inside(root):
    (root / "d").mkdir()
    os.symlink(root / "inside.txt", root / "d" / "alias.txt")
    assert resolve_inside(root, "d/alias.txt") == root / "inside.txt"


_segment = st.sampled_from(["..", ".", "a", "b", "inside.txt", "", "..%2f", "~", "c"])


@given(st.lists(_segment, min_size=1, max_size=6))
def test_resolve_inside_never_returns_a_path_outside(tmp_path_factory, parts):
    """Property: whatever the segments, the answer is inside the root or a refusal."""
    base = tmp_path_factory.getbasetemp() / "prop"
    root = base / "root"
    (root / "a" / "b").mkdir(parents=True, exist_ok=True)
    (root / "inside.txt").write_text("x")
    (base / "c").mkdir(exist_ok=True)
    root = root.resolve()
    try:
        got = resolve_inside(root, "/".join(parts))
    except NotServed:
        return
    assert got == root or got.is_relative_to(root)


def test_scanner_lists_collections_and_failed_runs(tmp_path):
    make_collection(tmp_path / "a", obs_id="A1", sources=[(1, 10.0, 20.0, 25.0, 300.0), (2, 10.1, 20.0, 40.0, 15.0)])
    make_collection(tmp_path / "a", obs_id="A1", counter=2, caldb_version="20260101-abcdef")
    make_failed_output(tmp_path / "nested" / "b", "B1")
    runs = {r.key: r for r in RootScanner(tmp_path).runs()}
    assert sorted(runs) == ["a/xband-gp_A1_c20250615-f166a0_p0.1.0_v001", "a/xband-gp_A1_c20260101-abcdef_p0.1.0_v002",
                            "nested/b"]  # fmt: skip
    first = runs["a/xband-gp_A1_c20250615-f166a0_p0.1.0_v001"]
    assert first.status == "SUCCESS" and first.mode == "XBAND-GP" and first.counter == 1
    assert [(s.src_id, s.r90_arcsec, s.det_ml) for s in first.sources] == [(1, 25.0, 300.0), (2, 40.0, 15.0)]
    assert first.duration_s == pytest.approx(12.5)
    failed = runs["nested/b"]
    assert failed.collection is None and failed.status == "CALDB_ERROR"
    assert "no PSF for this date" in failed.reason and "file=caldb.indx" in failed.reason
    assert failed.stopped_at == "brick=calibrate"


def test_scanner_skips_unpublished_and_hidden_folders(tmp_path):
    make_collection(tmp_path / "o", obs_id="O1")
    staging = tmp_path / "o" / ".staging" / "xband-gp_O1_c1_p0.1.0_v009"
    staging.mkdir(parents=True)
    (staging / "manifest.json").write_text("{}")
    (tmp_path / "o" / "xband-gp_O1_c1_p0.1.0_v002").mkdir()  # a folder without manifest: not published
    assert [r.counter for r in RootScanner(tmp_path).runs()] == [1]


def test_scanner_cache_follows_a_changed_manifest(tmp_path):
    d = make_collection(tmp_path, obs_id="C1")
    scanner = RootScanner(tmp_path)
    assert scanner.runs()[0].status == "SUCCESS"
    man = json.loads((d / "manifest.json").read_text())
    man["status"] = "PARTIAL"
    (d / "manifest.json").write_text(json.dumps(man))
    os.utime(d / "manifest.json", ns=(1, 1))  # a different mtime, whatever the clock's resolution
    assert scanner.runs()[0].status == "PARTIAL"
    import shutil

    shutil.rmtree(d)
    assert scanner.runs() == []  # the status names a collection that is gone: nothing to list


def test_scanner_finds_every_generated_run(tmp_path):
    make_root(tmp_path, 40)
    runs = RootScanner(tmp_path).runs()
    assert len(runs) == 40
    assert {r.status for r in runs} == {"SUCCESS", "PARTIAL", "NO_DATA"}


def test_read_sources_sorted_by_det_ml_and_tolerant(tmp_path):
    p = tmp_path / "s.fits"
    write_srclist(p, [(1, 1.0, 2.0, 30.0, 10.0), (2, 3.0, 4.0, 20.0, 99.0)])
    assert [s.src_id for s in read_sources(p)] == [2, 1]
    (tmp_path / "bad.fits").write_bytes(b"not fits")
    assert read_sources(tmp_path / "bad.fits") == []


def test_scanner_refuses_a_missing_root(tmp_path):
    from mxt_pipeline.errors import MXTInputError

    with pytest.raises(MXTInputError, match="not a folder"):
        RootScanner(Path(tmp_path / "nope"))
