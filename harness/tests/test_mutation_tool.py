"""tools/mutation.py: seeded sampling, the triage file, and a checkout that is never mutated."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("cosmic_ray")

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("mxt_mutation_tool", ROOT / "tools" / "mutation.py")
mt = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = mt  # dataclasses look their module up
_spec.loader.exec_module(mt)


@pytest.fixture(scope="module")
def gti_mutants():
    return mt.enumerate_mutants("gti")


def test_every_package_has_files_and_tests_that_exist():
    for name, pkg in mt.PACKAGES.items():
        assert pkg.files(), name
        for t in pkg.tests:
            if not t.startswith("-"):
                assert (ROOT / t).exists(), (name, t)


def test_sampling_is_seeded_and_per_package(gti_mutants):
    assert len(gti_mutants) > 100
    a = mt.sample(gti_mutants, 5, 22, "gti")
    assert [m.ident for m in a] == [m.ident for m in mt.sample(gti_mutants, 5, 22, "gti")]
    assert [m.ident for m in a] != [m.ident for m in mt.sample(gti_mutants, 5, 23, "gti")]
    assert len(mt.sample(gti_mutants, 0, 22, "gti")) == len(gti_mutants)  # 0: every mutant


def test_a_mutant_is_described_by_its_line_and_change(gti_mutants):
    source = (ROOT / "mxt_pipeline/datamodel/gti.py").read_text()
    m = next(x for x in gti_mutants if x.operator.startswith("core/ReplaceComparisonOperator_Gt_GtE"))
    mutated = mt.describe(m, source)
    assert mutated is not None and mutated != source
    assert source.splitlines()[m.line - 1].strip() == m.original
    assert ">=" in m.mutated and m.original.replace(">", ">=", 1) == m.mutated


def test_the_checkout_is_never_written_even_when_interrupted(tmp_path, gti_mutants, monkeypatch):
    """The mutant goes into the private copy and is undone there, exception or not."""
    rel = "mxt_pipeline/datamodel/gti.py"
    before = hashlib.sha256((ROOT / rel).read_bytes()).hexdigest()
    (tmp_path / rel).parent.mkdir(parents=True)
    (tmp_path / rel).write_text((ROOT / rel).read_text())
    seen = []

    def interrupted(cmd, **kw):
        seen.append((tmp_path / rel).read_text())
        raise KeyboardInterrupt

    monkeypatch.setattr(mt.subprocess, "run", interrupted)
    m = next(x for x in gti_mutants if x.operator.startswith("core/ReplaceComparisonOperator"))
    with pytest.raises(KeyboardInterrupt):
        mt.run_mutant(m, tmp_path, "unit", 10.0, None)
    assert seen and seen[0] != (ROOT / rel).read_text()  # the tests saw the mutant
    assert (tmp_path / rel).read_text() == (ROOT / rel).read_text()  # undone in the copy
    assert hashlib.sha256((ROOT / rel).read_bytes()).hexdigest() == before

    def timeout(cmd, **kw):
        raise subprocess.TimeoutExpired(cmd, 1.0)

    monkeypatch.setattr(mt.subprocess, "run", timeout)
    mt.run_mutant(m, tmp_path, "unit", 1.0, None)
    assert m.outcome == "timeout"
    m.outcome = "pending"
    mt.run_mutant(m, tmp_path, "unit", 1.0, {rel: {m.line}})  # no test executes the line
    assert m.outcome == "uncovered"


def test_scores_leave_out_equivalent_mutants():
    ms = [mt.Mutant("p", "f.py", 1, "op", i, outcome=o)
          for i, o in enumerate(["killed", "timeout", "survived", "equivalent", "incompetent"])]  # fmt: skip
    s = mt.score(ms)
    assert s["score"] == pytest.approx(2 / 3, abs=1e-4) and s["equivalent"] == 1 and s["sampled"] == 5


def test_triage_file_gives_a_verdict_and_reason_for_each_entry():
    entries = mt.load_triage()
    assert entries, "harness/mutation_triage.yaml lists the triaged survivors"
    for e in entries:
        assert e["verdict"] in ("equivalent", "missing-test"), e
        assert e.get("reason") and e.get("file") and e.get("operator") and "original" in e and "mutated" in e
        assert (ROOT / e["file"]).exists()
        if e["verdict"] == "missing-test":
            assert e.get("test"), e  # the test written for it
    raw = yaml.safe_load((ROOT / "harness" / "mutation_triage.yaml").read_text())
    assert set(raw) == {"mutants"}


def test_recheck_reruns_the_survivors_and_rescores(tmp_path, monkeypatch):
    ms = [mt.Mutant("gti", "mxt_pipeline/datamodel/gti.py", 10, "op", 0, outcome="killed"),
          mt.Mutant("gti", "mxt_pipeline/datamodel/gti.py", 11, "op", 1, outcome="survived")]  # fmt: skip
    report = tmp_path / "mutation.json"
    report.write_text(mt.json.dumps({"layer": "unit", "seed": 1, "per_package": 2, "elapsed_s": 1.0,
                                     "packages": {"gti": {"mutants_total": 9, **mt.score(ms)}},
                                     "mutants": [mt.dataclasses.asdict(m) for m in ms]}))  # fmt: skip
    assert mt.json.loads(report.read_text())["packages"]["gti"]["score"] == 0.5
    ran = []

    def fake_run(m, copy, layer, limit, executed):
        ran.append(m.line)
        m.outcome = "killed"

    monkeypatch.setattr(mt, "private_copy", lambda dest: dest)
    monkeypatch.setattr(mt, "baseline", lambda name, layer, copy: (1.0, None, ""))
    monkeypatch.setattr(mt, "run_mutant", fake_run)
    assert mt.main(["recheck", str(report)]) == 0
    assert ran == [11]  # only the survivor
    data = mt.json.loads(report.read_text())
    assert data["packages"]["gti"]["score"] == 1.0 and data["rechecked"]
    assert "Survivors rechecked" in report.with_suffix(".md").read_text()
