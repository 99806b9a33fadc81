"""Mutation testing of the science packages (issue #22) with cosmic-ray's mutation operators.

How many realistic single-line faults do the tests catch?  Each *mutant* is the checkout
with one small change made by a cosmic-ray operator (``<`` for ``<=``, ``-`` for ``+``,
``break`` for ``continue``, a number off by one, ...).  The package's own fast unit tests
run against it: a failure (or a run past the time limit) *kills* the mutant, a pass lets
it *survive*.  The score of a package is ``killed / (mutants - equivalent)``, where the
equivalent mutants are the survivors that ``harness/mutation_triage.yaml`` shows to
behave exactly like the original (a reason is given for each).

Commands::

    python tools/mutation.py list                       # packages, files, tests, mutant counts
    python tools/mutation.py run                        # seeded sample, 4 mutants per package
    python tools/mutation.py run --per-package 0 --jobs 8          # every mutant (hours)
    python tools/mutation.py run --layer golden --package gti      # the golden replay only
    python tools/mutation.py recheck reports/mutation.json         # survivors again, after new tests

``--layer golden`` runs every mutant against ``python -m harness run`` restricted to the
golden datasets and their replay (``--skip`` of the other steps) instead of the unit tests:
the score of that layer alone.

Safety: mutants are written into private copies of the checkout (the files git tracks
and the untracked files it does not ignore) under a temporary folder, never into the
checkout, so an interrupted run leaves the source tree as it was.

Before the mutants, the package's tests run once unmutated under coverage: they must
pass (else the package is reported broken and skipped), their time sets the time limit
of each mutant (3x, at least 30 s more), and a mutant on a line that no test executes is
recorded as surviving without running the tests (``uncovered``; not in files with numba
kernels, whose compiled lines coverage.py does not see).

Output: ``reports/mutation.json`` (scores, every sampled mutant with its outcome) and
``reports/mutation.md`` (a table of scores and the surviving mutants with file:line and
the change), both ignored by git; ``reports/examples/`` keeps a committed sample.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import difflib
import fnmatch
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TRIAGE = ROOT / "harness" / "mutation_triage.yaml"

#: pytest options of every unit-layer run: stop at the first failure, no cache written,
#: the bounded 'ci' hypothesis profile with a fixed seed (a mutant's verdict repeats).
PYTEST = ("-x", "-q", "-p", "no:cacheprovider", "--hypothesis-seed=0")

#: Steps of ``python -m harness run`` skipped by the golden layer (golden and replay run).
GOLDEN_SKIP = "pipeline,checks,localization,ensemble,timing,coverage"


@dataclasses.dataclass(frozen=True)
class Package:
    """A science package: its source files (globs) and the fast unit tests that cover it."""

    sources: tuple[str, ...]
    tests: tuple[str, ...]
    exclude: tuple[str, ...] = ("*/__init__.py",)

    def files(self) -> list[str]:
        out: set[str] = set()
        for pattern in self.sources:
            for p in ROOT.glob(pattern):
                rel = p.relative_to(ROOT).as_posix()
                if not any(fnmatch.fnmatch(rel, x) for x in self.exclude):
                    out.add(rel)
        return sorted(out)


#: The science packages of issue #22.  The coordinate transforms and the GTIs are counted
#: on their own (they live in calib/, datamodel/ and geometry.py).
PACKAGES: dict[str, Package] = {
    "calib": Package(
        ("mxt_pipeline/calib/*.py",),
        ("tests/calib/test_badpix.py", "tests/calib/test_chain.py", "tests/calib/test_energy.py",
         "tests/calib/test_patterns.py", "tests/calib/test_screening.py", "tests/calib/test_ingest.py"),
        exclude=("*/__init__.py", "mxt_pipeline/calib/coordinates.py"),
    ),  # fmt: skip
    "detect": Package(
        ("mxt_pipeline/detect/*.py",),
        ("tests/detect/test_pipeline.py", "tests/detect/test_likelihood.py", "tests/detect/test_images.py",
         "tests/detect/test_levels.py", "tests/detect/test_standard_background.py", "tests/detect/test_kernels.py",
         "tests/detect/test_radii.py", "tests/detect/test_tabulated.py", "tests/detect/test_search.py",
         "tests/detect/test_blas.py"),
        exclude=("*/__init__.py", "mxt_pipeline/detect/field_preview.py"),
    ),
    "lightcurve": Package(
        ("mxt_pipeline/lightcurve/*.py",),
        ("tests/lightcurve/test_bayesian_blocks.py", "tests/lightcurve/test_fpop_kernels.py",
         "tests/lightcurve/test_rates.py", "tests/lightcurve/test_poisson_errors.py", "tests/lightcurve/test_binning.py",
         "tests/lightcurve/test_extract.py", "tests/lightcurve/test_grb_template.py"),
        exclude=("*/__init__.py", "mxt_pipeline/lightcurve/preview.py"),
    ),
    "coordinates": Package(
        ("mxt_pipeline/geometry.py", "mxt_pipeline/calib/coordinates.py", "mxt_pipeline/datamodel/attitude.py"),
        ("tests/calib/test_coordinates.py", "tests/datamodel/test_attitude.py"),
    ),
    "gti": Package(
        ("mxt_pipeline/datamodel/gti.py",),
        ("tests/datamodel/test_gti.py", "tests/lightcurve/test_rates.py"),
    ),
    "caldb_select": Package(
        ("mxt_pipeline/caldb/select.py",),
        ("tests/caldb/test_select.py",),
    ),
}


@dataclasses.dataclass
class Mutant:
    package: str
    file: str
    line: int
    operator: str
    occurrence: int
    original: str = ""
    mutated: str = ""
    outcome: str = "pending"  # killed | timeout | survived | uncovered | incompetent | equivalent
    seconds: float = 0.0
    triage: dict | None = None

    @property
    def ident(self) -> str:
        return f"{self.file}:{self.line}:{self.operator}#{self.occurrence}"


# ---- enumeration ----------------------------------------------------------------------------


def _operators():
    import cosmic_ray.plugins as plugins

    for name in sorted(plugins.operator_names()):
        cls = plugins.get_operator(name)
        if not cls.arguments():  # operators that need arguments are not configured
            yield name, cls()


def enumerate_mutants(package: str) -> list[Mutant]:
    """Every mutant cosmic-ray's operators make of the package's files, in a fixed order."""
    from cosmic_ray.ast import ast_nodes, get_ast_from_path

    out: list[Mutant] = []
    ops = list(_operators())
    for rel in PACKAGES[package].files():
        tree = get_ast_from_path(ROOT / rel)
        nodes = list(ast_nodes(tree))
        for name, op in ops:
            occurrence = 0
            for node in nodes:
                for start, _end in op.mutation_positions(node):
                    out.append(Mutant(package, rel, int(start[0]), name, occurrence))
                    occurrence += 1
    return out


def sample(mutants: list[Mutant], n: int, seed: int, package: str) -> list[Mutant]:
    """``n`` mutants drawn without replacement (all when ``n`` is 0 or too large)."""
    if n <= 0 or n >= len(mutants):
        return list(mutants)
    picked = random.Random(f"{seed}:{package}").sample(range(len(mutants)), n)
    return [mutants[i] for i in sorted(picked)]


def describe(m: Mutant, source: str) -> str | None:
    """Fill the original and mutated line of ``m``; return the mutated source (None if the
    operator makes no change there)."""
    import cosmic_ray.plugins as plugins
    from cosmic_ray.mutating import mutate_code

    mutated = mutate_code(source, plugins.get_operator(m.operator)(), m.occurrence)
    if mutated is None or mutated == source:
        return None
    a, b = source.splitlines(), mutated.splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag != "equal":
            m.original = " / ".join(x.strip() for x in a[i1:i2])[:200]
            m.mutated = " / ".join(x.strip() for x in b[j1:j2])[:200]
            m.line = i1 + 1 if i2 > i1 else m.line
            break
    return mutated


# ---- triage ---------------------------------------------------------------------------------


def load_triage(path: Path = TRIAGE) -> list[dict]:
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text()) or {}
    return list(data.get("mutants") or [])


def triage_of(m: Mutant, entries: list[dict]) -> dict | None:
    """The triage entry of a mutant: same file, operator, original and mutated line (line
    numbers move with edits; the change itself does not)."""
    for e in entries:
        if (e.get("file") == m.file and e.get("operator") == m.operator
                and e.get("original", "").strip() == m.original and e.get("mutated", "").strip() == m.mutated):  # fmt: skip
            return e
    return None


# ---- running --------------------------------------------------------------------------------


def private_copy(dest: Path) -> Path:
    """Copy the files git would commit (tracked, and untracked not ignored) into ``dest``."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()  # fmt: skip
    for rel in filter(None, out.split("\0")):
        src = ROOT / rel
        if src.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


def _env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(copy), MPLBACKEND="Agg", PYTHONHASHSEED="0", HYPOTHESIS_PROFILE="ci",
               NUMBA_CACHE_DIR=str(copy / ".numba-cache"), PYTHONDONTWRITEBYTECODE="1")  # fmt: skip
    env.pop("COVERAGE_PROCESS_START", None)
    return env


def command(package: str, layer: str, copy: Path, coverage_json: Path | None = None) -> list[str]:
    if layer == "golden":
        return [sys.executable, "-m", "harness", "run", "--skip", GOLDEN_SKIP, "--reports", str(copy / "reports" / "tmp" / "mut")]
    cmd = [sys.executable, "-m", "pytest", *PYTEST]
    if coverage_json is not None:
        cmd += [f"--cov={copy / 'mxt_pipeline'}", "--cov-branch", f"--cov-report=json:{coverage_json}", "--cov-report="]
    return cmd + list(PACKAGES[package].tests)


def missing_lines(coverage_json: Path, copy: Path) -> dict[str, set[int]]:
    """Statements no test executed, per file.  (Not the complement of the executed lines:
    coverage.py counts a statement spread over several lines on its first line only.)"""
    data = json.loads(coverage_json.read_text())
    out: dict[str, set[int]] = {}
    for name, f in data.get("files", {}).items():
        p = Path(name)
        rel = (p.relative_to(copy) if p.is_absolute() else p).as_posix()
        out[rel] = set(f.get("missing_lines", []))
    return out


def baseline(package: str, layer: str, copy: Path) -> tuple[float, dict[str, set[int]] | None, str]:
    """Run the tests once unmutated; returns (seconds, missing lines or None, failure text)."""
    cov = copy / "reports" / "tmp" / f"mutcov-{package}.json" if layer == "unit" else None
    if cov is not None:
        cov.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run(command(package, layer, copy, cov), cwd=copy, env=_env(copy), capture_output=True, text=True,
                          check=False)  # fmt: skip
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        return dt, None, (proc.stdout + proc.stderr)[-3000:]
    return dt, (missing_lines(cov, copy) if cov is not None and cov.exists() else None), ""


def run_mutant(m: Mutant, copy: Path, layer: str, limit: float, missing: dict[str, set[int]] | None) -> None:
    target = copy / m.file
    source = (ROOT / m.file).read_text()
    mutated = describe(m, source)
    if mutated is None:
        m.outcome = "incompetent"
        return
    # numba-compiled functions run without being traced: no coverage verdict in their files.
    if missing is not None and "numba" not in source and m.line in missing.get(m.file, set()):
        m.outcome = "uncovered"
        return
    t0 = time.perf_counter()
    try:
        target.write_text(mutated)
        proc = subprocess.run(command(m.package, layer, copy), cwd=copy, env=_env(copy), capture_output=True,
                              text=True, timeout=limit, check=False)  # fmt: skip
        m.outcome = "survived" if proc.returncode == 0 else "killed"
    except subprocess.TimeoutExpired:
        m.outcome = "timeout"
    finally:
        target.write_text(source)
        m.seconds = round(time.perf_counter() - t0, 1)


def score(mutants: list[Mutant]) -> dict:
    c = Counter(m.outcome for m in mutants)
    killed = c["killed"] + c["timeout"]
    relevant = len(mutants) - c["equivalent"] - c["incompetent"]
    return {"sampled": len(mutants), **{k: c[k] for k in ("killed", "timeout", "survived", "uncovered", "equivalent", "incompetent")},
            "score": round(killed / relevant, 4) if relevant else None}  # fmt: skip


def _terminate(signum, frame):  # SIGTERM: unwind, so the temporary copies are removed
    raise SystemExit(128 + signum)


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    names = args.package or list(PACKAGES)
    triage = load_triage()
    result = {"tool": "cosmic-ray operators, tools/mutation.py", "layer": args.layer, "seed": args.seed,
              "per_package": args.per_package, "packages": {}, "mutants": []}  # fmt: skip
    t_start = time.perf_counter()
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="mxt-mutation-") as tmp:
        copies = [private_copy(Path(tmp) / f"w{i}") for i in range(max(1, args.jobs))]
        free = list(copies)
        baselines: dict[str, tuple] = {}
        for name in names:
            everything = enumerate_mutants(name)
            chosen = sample(everything, args.per_package, args.seed, name)
            if args.layer == "golden" and "golden" in baselines:  # one command for every package
                secs, missing, failure = baselines["golden"]
            else:
                secs, missing, failure = baselines.setdefault(args.layer if args.layer == "golden" else name,
                                                               baseline(name, args.layer, copies[0]))  # fmt: skip
            entry = {"mutants_total": len(everything), "baseline_s": round(secs, 1)}
            if failure:
                entry["broken"] = failure
                result["packages"][name] = entry
                print(f"{name}: the unmutated tests fail; skipped\n{failure}", file=sys.stderr)
                continue
            limit = max(3.0 * secs, secs + 30.0)
            if args.no_coverage_skip:
                missing = None

            def work(m: Mutant, limit=limit, missing=missing) -> Mutant:
                with lock:
                    copy = free.pop()
                try:
                    run_mutant(m, copy, args.layer, limit, missing)
                finally:
                    with lock:
                        free.append(copy)
                return m

            with concurrent.futures.ThreadPoolExecutor(max_workers=len(copies)) as pool:
                for m in pool.map(work, chosen):
                    if m.outcome in ("survived", "uncovered"):
                        m.triage = triage_of(m, triage)
                        if m.triage and m.triage.get("verdict") == "equivalent":
                            m.outcome = "equivalent"
                    print(f"  {m.outcome:11s} {m.file}:{m.line} {m.operator}  {m.original!r} -> {m.mutated!r}",
                          file=sys.stderr, flush=True)  # fmt: skip
            entry.update(score(chosen))
            result["packages"][name] = entry
            result["mutants"] += [dataclasses.asdict(m) | {"id": m.ident} for m in chosen]
            print(f"{name}: score {entry['score']} over {entry['sampled']} of {len(everything)} mutants", file=sys.stderr)
    result["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "mutation" if args.layer == "unit" else "mutation-golden"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def recheck(args: argparse.Namespace) -> int:
    """Run the survivors of an earlier report again (after tests were written for them)
    and rewrite that report with their new outcomes and the new scores."""
    signal.signal(signal.SIGTERM, _terminate)
    path = Path(args.report)
    result = json.loads(path.read_text())
    triage = load_triage()
    fields = {f.name for f in dataclasses.fields(Mutant)}
    mutants = [Mutant(**{k: v for k, v in d.items() if k in fields}) for d in result["mutants"]]
    again = [m for m in mutants if m.outcome in ("survived", "uncovered", "equivalent")]
    with tempfile.TemporaryDirectory(prefix="mxt-mutation-") as tmp:
        copy = private_copy(Path(tmp) / "w0")
        for name in sorted({m.package for m in again}):
            secs, missing, failure = baseline(name, result["layer"], copy)
            if failure:
                print(f"{name}: the unmutated tests fail; not rechecked\n{failure}", file=sys.stderr)
                continue
            for m in (x for x in again if x.package == name):
                before = m.outcome
                m.outcome, m.triage = "pending", None
                run_mutant(m, copy, result["layer"], max(3.0 * secs, secs + 30.0), missing)
                if m.outcome in ("survived", "uncovered"):
                    m.triage = triage_of(m, triage)
                    if m.triage and m.triage.get("verdict") == "equivalent":
                        m.outcome = "equivalent"
                print(f"  {before} -> {m.outcome}: {m.ident}", file=sys.stderr, flush=True)
    for name in result["packages"]:
        if "broken" not in result["packages"][name]:
            result["packages"][name].update(score([m for m in mutants if m.package == name]))
    result["mutants"] = [dataclasses.asdict(m) | {"id": m.ident} for m in mutants]
    result["rechecked"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    path.write_text(json.dumps(result, indent=1) + "\n")
    path.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(result: dict) -> str:
    lines = [f"# Mutation testing ({result['layer']} layer)", "",
             f"Seed {result['seed']}, {result['per_package'] or 'all'} mutant(s) per package, "
             f"{result.get('elapsed_s', 0):.0f} s. Score = (killed + timeout) / (sampled - equivalent - incompetent)."
             + (f" Survivors rechecked {result['rechecked']} against the tests written for them." if result.get("rechecked") else ""),
             "",
             "| package | mutants | sampled | killed | timeout | survived | uncovered | equivalent | score |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, p in result["packages"].items():
        if "broken" in p:
            lines.append(f"| {name} | {p['mutants_total']} | tests fail unmutated | | | | | | |")
            continue
        s = "n/a" if p["score"] is None else f"{100 * p['score']:.0f} %"
        lines.append(f"| {name} | {p['mutants_total']} | {p['sampled']} | {p['killed']} | {p['timeout']} | {p['survived']} "
                     f"| {p['uncovered']} | {p['equivalent']} | {s} |")  # fmt: skip
    surv = [m for m in result["mutants"] if m["outcome"] in ("survived", "uncovered", "equivalent")]
    lines += ["", "## Surviving mutants", ""]
    if not surv:
        lines.append("None.")
    for m in surv:
        verdict = (m.get("triage") or {}).get("verdict", "not triaged")
        reason = (m.get("triage") or {}).get("reason", "")
        lines.append(f"- `{m['file']}:{m['line']}` {m['operator']} ({m['outcome']}): `{m['original']}` -> "
                     f"`{m['mutated']}` — {verdict}{': ' + reason if reason else ''}")  # fmt: skip
    return "\n".join(lines) + "\n"


def list_packages(_args: argparse.Namespace) -> int:
    for name, pkg in PACKAGES.items():
        n = len(enumerate_mutants(name))
        print(f"{name}: {n} mutants in {len(pkg.files())} file(s); tests: {' '.join(pkg.tests)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a (sampled) mutation test")
    r.add_argument("--package", action="append", choices=sorted(PACKAGES), help="package (repeatable; default all)")
    r.add_argument("--per-package", type=int, default=4, help="mutants sampled per package; 0 = every mutant")
    r.add_argument("--seed", type=int, default=22)
    r.add_argument("--layer", choices=("unit", "golden"), default="unit",
                   help="unit: the package's fast tests; golden: python -m harness run (golden, replay) only")
    r.add_argument("--jobs", type=int, default=1, help="mutants run at once (one private copy each)")
    r.add_argument("--no-coverage-skip", action="store_true", help="run the tests even on lines they never execute")
    r.add_argument("--out", default=str(ROOT / "reports"), help="folder of mutation.json and mutation.md")
    r.set_defaults(func=run)
    sub.add_parser("list", help="packages, files, tests and mutant counts").set_defaults(func=list_packages)
    c = sub.add_parser("recheck", help="run the survivors of a report again and rewrite it")
    c.add_argument("report", help="a mutation.json written by run")
    c.set_defaults(func=recheck)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
