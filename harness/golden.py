"""Golden datasets: frozen inputs and expected outputs, a manifest, and the bless step.

Layout of one golden dataset ``golden/<NAME>/``::

    MANIFEST.json      what the set is (scenario, seed, pipeline, versions) and the
                       SHA-256 and size of every file below
    BLESS.log          one JSON line per promotion: date, who, commit, reason, the
                       SHA-256 of the manifest it promoted, and what changed
    input/             the L1 dataset (dataset.json, l1/, aux/, saa/, truth.json)
    expected/<brick>/  what each brick writes when replayed alone on its golden input
    expected/pipeline/ what the whole pipeline writes end to end

Rules (after the JWST "okify" practice and pytest-regressions' ``--force-regen``, made
stricter):

* golden data are never regenerated silently: :func:`make_candidate` writes to a
  separate candidates folder (default ``build/golden-candidates/<NAME>``), never under
  ``golden/``;
* :func:`bless` is the only way into ``golden/``: it checks the candidate against its own
  manifest, computes the diff with the current golden set, requires a reason and a
  confirmation (the command line shows the diff and asks), then swaps the folder in and
  appends a record to ``BLESS.log``;
* :func:`verify` recomputes every checksum: a golden file edited by hand, added or
  removed fails, and so does a manifest edited by hand (its SHA-256 no longer matches
  the last ``BLESS.log`` record).
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.config import HarnessConfig, load_config, repo_root
from harness.filediff import compare_trees
from harness.fitsdiff import FileDiff
from mxt_pipeline.pipelines.ports import write_json
from mxt_pipeline.services.files import sha256_file

__all__ = [
    "MANIFEST",
    "BLESS_LOG",
    "GoldenError",
    "GoldenStore",
    "VerifyResult",
    "BlessRecord",
    "build_manifest",
    "git_commit",
    "who",
    "read_bless_log",
]

MANIFEST = "MANIFEST.json"
BLESS_LOG = "BLESS.log"
#: Files of a golden folder that the manifest does not list (it cannot list itself).
_BOOKKEEPING = (MANIFEST, BLESS_LOG)
MANIFEST_SCHEMA = 1


class GoldenError(RuntimeError):
    """A golden-data operation refused (missing candidate, no reason, bad manifest...)."""


def git_commit(root: Path | None = None) -> str:
    """The current commit (``+dirty`` when the tree has changes), or ``unknown``."""
    root = root or repo_root()
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
            check=True, timeout=20,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
            text=True, check=True, timeout=60,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha


def who() -> str:
    """Who blesses: ``$MXT_BLESS_USER``, else git's user.name <user.email>, else the login."""
    env = os.environ.get("MXT_BLESS_USER")
    if env:
        return env
    try:
        name = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=10).stdout.strip()
        mail = subprocess.run(["git", "config", "user.email"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = mail = ""
    if name:
        return f"{name} <{mail}>" if mail else name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _listed_files(folder: Path) -> dict[str, Path]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(folder).as_posix()
        if rel in _BOOKKEEPING or any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        out[rel] = p
    return out


def build_manifest(folder: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest of ``folder``: ``meta`` plus SHA-256 and size of every file."""
    files = {rel: {"sha256": sha256_file(p), "size": p.stat().st_size} for rel, p in _listed_files(folder).items()}
    return {
        "schema": MANIFEST_SCHEMA,
        **dict(meta),
        "files": files,
        "total_bytes": sum(f["size"] for f in files.values()),
    }


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.exists():
        raise GoldenError(f"{path}: no manifest")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise GoldenError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        raise GoldenError(f"{path}: not a golden manifest (no 'files' mapping)")
    return doc


@dataclass
class VerifyResult:
    """Outcome of a checksum check of one golden (or candidate) folder."""

    name: str
    folder: Path
    exists: bool
    problems: list[str] = field(default_factory=list)
    n_files: int = 0
    total_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.exists and not self.problems


@dataclass
class BlessRecord:
    """One line of ``BLESS.log``."""

    date: str
    user: str
    commit: str
    reason: str
    manifest_sha256: str
    changed: list[str]
    added: list[str]
    removed: list[str]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class GoldenStore:
    """The golden datasets of a checkout and the candidates folder beside them.

    Parameters
    ----------
    root : path-like, optional
        The ``golden/`` folder (default ``<repo>/golden``).
    candidates : path-like, optional
        Where :meth:`make_candidate` writes (default ``<repo>/build/golden-candidates``);
        must not be inside ``root``.
    config : HarnessConfig, optional
        Tolerances for the diffs shown before blessing.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        candidates: str | os.PathLike[str] | None = None,
        config: HarnessConfig | None = None,
    ) -> None:
        self.root = Path(root) if root else repo_root() / "golden"
        self.candidates = Path(candidates) if candidates else repo_root() / "build" / "golden-candidates"
        self.config = config or load_config()
        r, c = self.root.resolve(), self.candidates.resolve()
        if c == r or r in c.parents:
            raise GoldenError(f"the candidates folder {c} must not be inside the golden folder {r}")

    # ---- where things are ---------------------------------------------------------------
    def path(self, name: str) -> Path:
        _check_name(name)
        return self.root / name

    def candidate_path(self, name: str) -> Path:
        _check_name(name)
        return self.candidates / name

    def names(self) -> list[str]:
        """Golden datasets present (folders holding a manifest)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and (p / MANIFEST).exists())

    def declared(self) -> list[str]:
        """Golden datasets the configuration requires (``golden.sets``)."""
        return sorted((self.config.golden.get("sets") or {}).keys())

    def missing(self) -> list[str]:
        """Declared datasets that are not in ``golden/`` yet."""
        have = set(self.names())
        return [n for n in self.declared() if n not in have]

    def manifest(self, name: str) -> dict[str, Any]:
        return _read_manifest(self.path(name))

    # ---- checksums ------------------------------------------------------------------------
    def verify_folder(self, folder: Path, name: str, *, require_bless: bool) -> VerifyResult:
        """Check every file of ``folder`` against its manifest."""
        res = VerifyResult(name, folder, folder.is_dir())
        if not res.exists:
            res.problems.append(f"{folder} does not exist")
            return res
        try:
            manifest = _read_manifest(folder)
        except GoldenError as exc:
            res.problems.append(str(exc))
            return res
        files = _listed_files(folder)
        listed = manifest["files"]
        for rel, info in sorted(listed.items()):
            p = files.get(rel)
            if p is None:
                res.problems.append(f"{name}/{rel}: listed in the manifest but missing")
                continue
            digest = sha256_file(p)
            if digest != info.get("sha256"):
                res.problems.append(
                    f"{name}/{rel}: SHA-256 {digest[:12]}... differs from the manifest's "
                    f"{str(info.get('sha256'))[:12]}... (edited by hand? golden data change only by 'bless')"
                )
            res.total_bytes += p.stat().st_size
        for rel in sorted(set(files) - set(listed)):
            res.problems.append(f"{name}/{rel}: not listed in the manifest (added by hand?)")
        res.n_files = len(listed)
        if require_bless:
            log = read_bless_log(folder)
            if not log:
                res.problems.append(f"{name}: no {BLESS_LOG} record: golden data enter only through 'bless'")
            else:
                actual = sha256_file(folder / MANIFEST)
                if log[-1].get("manifest_sha256") != actual:
                    res.problems.append(
                        f"{name}/{MANIFEST}: SHA-256 differs from the one recorded by the last bless "
                        "(manifest edited by hand?)"
                    )
        return res

    def verify(self, name: str) -> VerifyResult:
        """Check the golden dataset ``name`` (files, manifest, bless record)."""
        return self.verify_folder(self.path(name), name, require_bless=True)

    def verify_all(self) -> list[VerifyResult]:
        return [self.verify(n) for n in self.names()]

    def total_bytes(self, *, unique: bool = True) -> int:
        """Size of the files under ``golden/``.

        With ``unique`` (default) files of identical content count once: that is what
        the repository stores (git keeps one blob per content), and the expected output
        of a brick is often byte-identical to the pipeline's (``SOURCE_DATE_EPOCH`` fixes
        DATE during generation).
        """
        if not self.root.is_dir():
            return 0
        files = [p for p in self.root.rglob("*") if p.is_file()]
        if not unique:
            return sum(p.stat().st_size for p in files)
        seen: dict[str, int] = {}
        for p in files:
            seen.setdefault(sha256_file(p), p.stat().st_size)
        return sum(seen.values())

    # ---- candidates -----------------------------------------------------------------------
    def make_candidate(
        self,
        name: str,
        generator: Callable[[str, Mapping[str, Any], Path], Mapping[str, Any]],
        spec: Mapping[str, Any] | None = None,
    ) -> Path:
        """Generate the candidate of ``name`` into the candidates folder.

        Parameters
        ----------
        name : str
            Golden dataset name.
        generator : callable
            ``generator(name, spec, folder) -> meta``: writes ``input/`` and ``expected/``
            into ``folder`` (empty) and returns the metadata stored in the manifest.
        spec : mapping, optional
            The dataset's definition (default ``golden.sets[name]`` of the config).

        Returns
        -------
        pathlib.Path
            The candidate folder, with its manifest. ``golden/`` is not touched.
        """
        if spec is None:
            sets = self.config.golden.get("sets") or {}
            if name not in sets:
                raise GoldenError(f"no golden dataset {name!r} in the configuration; known: {sorted(sets)}")
            spec = sets[name]
        dest = self.candidate_path(name)
        tmp = dest.with_name(f".{name}.making")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            meta = dict(generator(name, spec, tmp) or {})
            meta.setdefault("name", name)
            meta.setdefault("created", _now())
            meta.setdefault("commit", git_commit())
            meta.setdefault("definition", dict(spec))
            write_json(tmp / MANIFEST, build_manifest(tmp, meta))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        return dest

    def diff_candidate(self, name: str) -> dict[str, FileDiff]:
        """Differences between the candidate of ``name`` and the golden set (if any)."""
        cand = self.candidate_path(name)
        if not (cand / MANIFEST).exists():
            raise GoldenError(f"no candidate for {name!r} in {self.candidates}: run 'python -m harness golden make {name}'")
        gold = self.path(name)
        if not gold.exists():
            gold.mkdir(parents=True, exist_ok=True)
            try:
                return compare_trees(cand, gold, self.config, ignore=_BOOKKEEPING)
            finally:
                gold.rmdir()
        return compare_trees(cand, gold, self.config, ignore=_BOOKKEEPING)

    # ---- bless ----------------------------------------------------------------------------
    def bless(
        self,
        name: str,
        reason: str,
        *,
        user: str | None = None,
        confirm: Callable[[dict[str, FileDiff]], bool] | None = None,
    ) -> BlessRecord:
        """Promote the candidate of ``name`` into ``golden/`` and record why.

        Parameters
        ----------
        name : str
            Golden dataset.
        reason : str
            Why the expected data change (at least 10 characters; stored in BLESS.log).
        user : str, optional
            Who blesses (default :func:`who`).
        confirm : callable, optional
            Shown the diffs; returns True to go on. ``None`` goes on (for scripts that
            already showed the diff).

        Raises
        ------
        GoldenError
            No candidate, candidate altered since it was made, no reason, or refused.
        """
        reason = (reason or "").strip()
        if len(reason) < 10:
            raise GoldenError("a reason of at least 10 characters is required to bless golden data")
        cand = self.candidate_path(name)
        check = self.verify_folder(cand, name, require_bless=False)
        if not check.exists or not (cand / MANIFEST).exists():
            raise GoldenError(f"no candidate for {name!r} in {self.candidates}: run 'python -m harness golden make {name}'")
        if check.problems:
            raise GoldenError("the candidate does not match its own manifest:\n  " + "\n  ".join(check.problems))
        diffs = self.diff_candidate(name)
        if confirm is not None and not confirm(diffs):
            raise GoldenError(f"bless of {name!r} refused")
        changed = sorted(r for r, d in diffs.items() if not d.identical and _kind(d) == "changed")
        added = sorted(r for r, d in diffs.items() if _kind(d) == "added")
        removed = sorted(r for r, d in diffs.items() if _kind(d) == "removed")
        gold = self.path(name)
        history = read_bless_log(gold) if gold.exists() else []
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{name}.blessing"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(cand, staging)
        record = BlessRecord(
            date=_now(),
            user=user or who(),
            commit=git_commit(),
            reason=reason,
            manifest_sha256=sha256_file(staging / MANIFEST),
            changed=changed,
            added=added,
            removed=removed,
        )
        lines = [json.dumps(h, sort_keys=True) for h in history] + [json.dumps(record.to_dict(), sort_keys=True)]
        (staging / BLESS_LOG).write_text("\n".join(lines) + "\n", encoding="utf-8")
        old = self.root / f".{name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if gold.exists():
            os.replace(gold, old)
        os.replace(staging, gold)
        shutil.rmtree(old, ignore_errors=True)
        return record


def _kind(d: FileDiff) -> str:
    for diff in d.differences:
        if diff.kind == "file" and diff.message == "missing":
            return "removed"  # in golden, not in the candidate
        if diff.kind == "file" and diff.message == "not in the reference":
            return "added"
    return "changed"


def read_bless_log(folder: Path) -> list[dict[str, Any]]:
    """The records of ``folder/BLESS.log`` (oldest first); unreadable lines are skipped."""
    path = Path(folder) / BLESS_LOG
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith(".") or name in ("..",):
        raise GoldenError(f"invalid golden dataset name {name!r}")
