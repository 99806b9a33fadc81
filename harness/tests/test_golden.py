"""Golden data management: candidates never touch golden/, bless records who/when/why,
and every hand edit of a golden file or manifest is caught by the checksum check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from harness.cli import cli
from harness.config import from_mapping
from harness.golden import BLESS_LOG, MANIFEST, GoldenError, GoldenStore, read_bless_log

from .products import event_columns, write_events_file


def _generator(energy_shift: float = 0.0, extra: bool = False):
    """A stand-in generator: one input product, one expected product, one JSON."""

    def gen(name, spec, folder: Path):
        cols = event_columns(40, int(spec.get("seed", 0)))
        write_events_file(folder / "input" / "events.fits", cols)
        cols["ENERGY"] = cols["ENERGY"] + np.float32(energy_shift)
        write_events_file(folder / "expected" / "calibrate" / "mxt_l2_evt.fits", cols)
        (folder / "expected" / "summary.json").write_text(json.dumps({"n": 40, "shift": energy_shift}))
        if extra:
            (folder / "expected" / "extra.json").write_text("{}")
        return {"scenario": "unit-test", "seed": spec.get("seed", 0)}

    return gen


@pytest.fixture
def store(tmp_path, config, monkeypatch):
    monkeypatch.setenv("MXT_BLESS_USER", "Test Person <test@example.org>")
    cfg = from_mapping({**config.raw, "golden": {"sets": {"toy": {"seed": 3, "pipeline": "xband-gp"}}}})
    return GoldenStore(tmp_path / "golden", tmp_path / "cand", config=cfg)


def test_make_writes_candidates_only(store):
    path = store.make_candidate("toy", _generator())
    assert path == store.candidate_path("toy")
    assert not store.root.exists() or not any(store.root.iterdir())
    man = json.loads((path / MANIFEST).read_text())
    assert set(man["files"]) == {"input/events.fits", "expected/calibrate/mxt_l2_evt.fits", "expected/summary.json"}
    assert all(len(f["sha256"]) == 64 for f in man["files"].values())
    assert man["definition"]["seed"] == 3 and man["scenario"] == "unit-test"
    assert store.missing() == ["toy"]


def test_candidates_inside_golden_refused(tmp_path):
    with pytest.raises(GoldenError):
        GoldenStore(tmp_path / "golden", tmp_path / "golden" / "cand")


def test_bless_requires_a_reason_and_records_it(store):
    store.make_candidate("toy", _generator())
    with pytest.raises(GoldenError, match="reason"):
        store.bless("toy", "  short ")
    assert not store.path("toy").exists()
    rec = store.bless("toy", "first golden data for the toy set")
    assert rec.user == "Test Person <test@example.org>"
    assert rec.added and not rec.changed and not rec.removed
    log = read_bless_log(store.path("toy"))
    assert len(log) == 1 and log[0]["reason"] == "first golden data for the toy set"
    assert log[0]["date"].endswith("Z") and log[0]["commit"]
    assert store.verify("toy").ok
    assert store.missing() == []


def test_second_bless_shows_the_diff_and_appends(store):
    store.make_candidate("toy", _generator())
    store.bless("toy", "first golden data for the toy set")
    store.make_candidate("toy", _generator(energy_shift=0.5, extra=True))
    diffs = store.diff_candidate("toy")
    changed = {rel for rel, d in diffs.items() if not d.identical}
    assert changed == {"expected/calibrate/mxt_l2_evt.fits", "expected/summary.json", "expected/extra.json"}
    energy = diffs["expected/calibrate/mxt_l2_evt.fits"]
    assert ("EVENTS", "ENERGY") in {(x.hdu, x.name) for x in energy.differences}
    seen = {}

    def refuse(d):
        seen.update(d)
        return False

    with pytest.raises(GoldenError, match="refused"):
        store.bless("toy", "energy scale moved by 0.5 keV", confirm=refuse)
    assert seen and len(read_bless_log(store.path("toy"))) == 1  # nothing changed
    rec = store.bless("toy", "energy scale moved by 0.5 keV", confirm=lambda d: True)
    assert rec.changed == ["expected/calibrate/mxt_l2_evt.fits", "expected/summary.json"]
    assert rec.added == ["expected/extra.json"]
    log = read_bless_log(store.path("toy"))
    assert [r["reason"] for r in log] == ["first golden data for the toy set", "energy scale moved by 0.5 keV"]
    assert store.verify("toy").ok


@pytest.mark.parametrize("edit", ["byte", "fits_value", "add", "remove", "manifest", "no_log"])
def test_hand_edits_are_caught(store, edit):
    store.make_candidate("toy", _generator())
    store.bless("toy", "first golden data for the toy set")
    g = store.path("toy")
    target = g / "expected" / "calibrate" / "mxt_l2_evt.fits"
    if edit == "byte":
        data = bytearray(target.read_bytes())
        data[-10] ^= 0x01
        target.write_bytes(bytes(data))
    elif edit == "fits_value":
        with fits.open(target, mode="update") as hdul:  # a well-formed edit, checksums redone
            hdul["EVENTS"].data["ENERGY"][0] += 1.0
            hdul.flush()
    elif edit == "add":
        (g / "expected" / "new.json").write_text("{}")
    elif edit == "remove":
        (g / "expected" / "summary.json").unlink()
    elif edit == "manifest":
        man = json.loads((g / MANIFEST).read_text())
        man["files"]["expected/calibrate/mxt_l2_evt.fits"]["size"] += 0
        man["note"] = "edited"
        (g / MANIFEST).write_text(json.dumps(man))
    elif edit == "no_log":
        (g / BLESS_LOG).unlink()
    res = store.verify("toy")
    assert not res.ok
    text = "\n".join(res.problems)
    expect = {
        "byte": "mxt_l2_evt.fits: SHA-256",
        "fits_value": "mxt_l2_evt.fits: SHA-256",
        "add": "new.json: not listed",
        "remove": "summary.json: listed in the manifest but missing",
        "manifest": "MANIFEST.json: SHA-256 differs",
        "no_log": "no BLESS.log record",
    }[edit]
    assert expect in text


def test_candidate_altered_after_make_is_refused(store):
    path = store.make_candidate("toy", _generator())
    (path / "expected" / "summary.json").write_text('{"n": 41}')
    with pytest.raises(GoldenError, match="does not match its own manifest"):
        store.bless("toy", "should not go through at all")


def test_failed_generator_leaves_nothing(store):
    def boom(name, spec, folder):
        (folder / "partial.txt").write_text("x")
        raise RuntimeError("simulator crashed")

    with pytest.raises(RuntimeError):
        store.make_candidate("toy", boom)
    assert not store.candidate_path("toy").exists()


def test_unknown_or_bad_names(store):
    with pytest.raises(GoldenError, match="no golden dataset"):
        store.make_candidate("nope", _generator())
    for bad in ("../x", ".hidden", ""):
        with pytest.raises(GoldenError):
            store.path(bad)
    with pytest.raises(GoldenError, match="no candidate"):
        store.bless("toy", "a perfectly good reason")


def test_cli_bless_diff_verify(store, tmp_path, monkeypatch):
    store.make_candidate("toy", _generator())
    runner = CliRunner()
    args = ["--golden", str(store.root), "--candidates", str(store.candidates)]
    r = runner.invoke(cli, ["bless", "toy", "--reason", "first toy golden set", *args], input="n\n")
    assert r.exit_code == 1 and "refused" in r.output and not store.path("toy").exists()
    assert "not in the reference" in r.output  # the diff was shown before the question
    r = runner.invoke(cli, ["bless", "toy", "--reason", "first toy golden set", *args], input="y\n")
    assert r.exit_code == 0, r.output
    assert "blessed toy by Test Person" in r.output
    r = runner.invoke(cli, ["golden", "verify", "toy", "--golden", str(store.root)])
    assert r.exit_code == 0 and "OK    toy" in r.output
    r = runner.invoke(cli, ["golden", "diff", "toy", *args])
    assert r.exit_code == 0 and "0 of 3 file(s) differ" in r.output
    (store.path("toy") / "expected" / "summary.json").write_text("{}")
    r = runner.invoke(cli, ["golden", "verify", "toy", "--golden", str(store.root)])
    assert r.exit_code == 1 and "summary.json: SHA-256" in r.output


def test_size_counts_identical_content_once(store):
    store.make_candidate("toy", _generator())
    store.bless("toy", "first golden data for the toy set")
    g = store.path("toy")
    before = store.total_bytes()
    size = (g / "expected" / "calibrate" / "mxt_l2_evt.fits").stat().st_size
    # A byte-identical copy (what git stores once) adds nothing to the distinct size.
    import shutil

    shutil.copy(g / "expected" / "calibrate" / "mxt_l2_evt.fits", g / "expected" / "copy.fits")
    assert store.total_bytes() == before
    assert store.total_bytes(unique=False) >= before + size
