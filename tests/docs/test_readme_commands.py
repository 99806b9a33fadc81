"""The README is executable: every command block of ``README.md`` and ``docs/*.md``
runs, in the order written, in a clean copy of the checkout without ``../shared``.

The copy holds exactly what git would commit (tracked and new, not ignored, files),
so the test sees the working tree; it is a git repository, and once every command has
run ``git status`` must be clean: the commands neither modify tracked files nor leave
files that are not ignored.  Conventions and the substitution table:
:mod:`tests.docs.readme_runner`, ``docs/getting-started.md``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mxt_pipeline.datapaths import REPO_ROOT

from .readme_runner import SUBSTITUTIONS, Command, Session, apply_substitutions, commands_of

DOCS = ["README.md", *sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "docs").glob("*.md"))]


def documented_commands() -> list[Command]:
    out: list[Command] = []
    for name in DOCS:
        out += commands_of((REPO_ROOT / name).read_text(encoding="utf-8"), name)
    return out


def _git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def clean_copy(dest: Path) -> Path:
    """What a clone of the working tree would hold, as a fresh repository at ``dest``."""
    names = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO_ROOT).split("\0")
    for name in filter(None, names):
        src = REPO_ROOT / name
        if not src.is_file():  # deleted in the working tree
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / name)
    ident = {"GIT_AUTHOR_NAME": "readme", "GIT_AUTHOR_EMAIL": "readme@example.org",
             "GIT_COMMITTER_NAME": "readme", "GIT_COMMITTER_EMAIL": "readme@example.org"}  # fmt: skip
    env = {**os.environ, **ident}
    _git("init", "-q", cwd=dest)
    _git("add", "-A", cwd=dest)
    _git("commit", "-q", "-m", "clean copy", cwd=dest, env=env)
    return dest


def newcomer_env(tmp: Path, repo: Path) -> dict[str, str]:
    """No real data, no CALDB or service settings of this machine; ``mxt`` and ``python``
    are this interpreter running the copy."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name, args in (("mxt", "-m mxt_pipeline.cli.main"), ("python", ""), ("python3", "")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {args} "$@"\n')
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("MXT_") or k in {"CALDB", "PYTHONPATH", "VIRTUAL_ENV"})}  # fmt: skip
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(repo), MPLBACKEND="Agg",
               MXT_CALDB_STATE_DIR=str(tmp / "caldb-state"), PYTHONDONTWRITEBYTECODE="1")  # fmt: skip
    return env


def test_documents_have_commands():
    cmds = documented_commands()
    assert any(c.source == "README.md" and c.text.startswith("mxt simulate grb") for c in cmds)
    assert any(c.source.startswith("docs/") for c in cmds)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MXT_HARNESS_INNER") == "1",
                    reason="the harness's coverage run: tox runs this test already")  # fmt: skip
def test_every_documented_command_runs_in_a_clean_clone(tmp_path):
    root = tmp_path / "clone"  # tmp_path/clone/.. has no shared/: no real data
    repo = clean_copy(root / "mxt")
    assert not (repo.parent / "shared").exists()
    session = Session(cwd=repo, env=newcomer_env(tmp_path, repo))
    block = None
    try:
        for cmd in documented_commands():
            if block is not None and (cmd.source, cmd.block) != block:
                session.end_block()
            block = (cmd.source, cmd.block)
            session.run(cmd)
    finally:
        session.end_block()
        print("\n".join(session.log))
    status = _git("status", "--porcelain", "--untracked-files=all", cwd=repo)
    assert status == "", f"the documented commands left the checkout dirty:\n{status}"


# --------------------------------------------------------------------------------------
# The runner itself: a drifted command fails; illustrations are not run
# --------------------------------------------------------------------------------------

DOC = """
Text.

```bash
mxt simulate grb --seed 1 --out sim/a   # a comment
echo "# not a comment" \\
  --continued
```

```text
mxt simulate --case grb   # a synopsis: not run
```

```console
$ mxt --version
mxt, version 0.1.0
```

```python
import mxt_pipeline
```
"""


def test_blocks_tags_comments_and_continuations():
    cmds = commands_of(DOC, "x.md")
    assert [c.text for c in cmds] == ["mxt simulate grb --seed 1 --out sim/a",
                                      'echo "# not a comment" \\\n  --continued', "mxt --version"]  # fmt: skip
    assert [c.line for c in cmds] == [5, 6, 15] and [c.block for c in cmds] == [1, 1, 3]


def test_substitutions_shrink_sizes_but_keep_names():
    assert apply_substitutions("mxt campaign run --case montecarlo --n 200 --out camp/") == (
        "mxt campaign run --case montecarlo --n 2 --out camp/", (0,))
    assert apply_substitutions("pip install tox && tox")[0] is None
    # A drifted option is left as written, so it fails as a newcomer would see it fail.
    assert apply_substitutions("mxt campaign run --cases montecarlo --n 2")[0] == "mxt campaign run --cases montecarlo --n 2"
    for sub in SUBSTITUTIONS:
        assert sub.why


def test_a_drifted_command_fails_naming_its_line(tmp_path):
    env = newcomer_env(tmp_path, REPO_ROOT)
    session = Session(cwd=tmp_path, env=env, timeout_s=120)
    session.run(Command("mxt simulate --help", "README.md", 3, 1))
    with pytest.raises(AssertionError, match=r"README.md:7: `mxt simulate --case grb --seed 1` exited 2"):
        session.run(Command("mxt simulate --case grb --seed 1", "README.md", 7, 1))


def test_a_service_that_stops_fails(tmp_path):
    session = Session(cwd=tmp_path, env=dict(os.environ), timeout_s=30)
    with pytest.raises(AssertionError, match="stopped"):
        session.run(Command("sh -c 'exit 3' &", "README.md", 9, 2))
    session.end_block()
    session.run(Command("X=1 sleep 30 &", "README.md", 10, 3))  # an environment assignment, as in the README
    assert session._services and session._services[0][1].poll() is None
    session.end_block()
    assert not session._services
