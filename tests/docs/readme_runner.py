"""Run the command blocks of the README and of ``docs/*.md`` as a newcomer would.

Convention (also in ``docs/getting-started.md``)
-----------------------------------------------
* A fenced block tagged ``bash``, ``sh``, ``shell`` or ``console`` holds commands, and
  they are run, in the order written, file after file (README first).  In a ``console``
  block only the lines starting with ``$ `` are commands; the others are their output.
* Any other block (untagged, ``text``, ``python``, ``json``, ``yaml``, ...) is an
  illustration: a synopsis with placeholders, a file layout, an example output.  It
  is not run.
* A command ending with ``&`` starts a service: it must still be running (and
  listening, when it names ``--port N``) a few seconds later; it is stopped at the end
  of its block.
* :data:`SUBSTITUTIONS` makes a few commands small (``--n 200`` -> ``--n 2``) or skips
  what cannot run inside a test (``tox`` runs this very test).  It only ever shrinks a
  size or adds a ``--skip``: a renamed subcommand or option still fails.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Command", "Substitution", "SUBSTITUTIONS", "commands_of", "apply_substitutions", "Session"]

RUN_LANGS = frozenset({"bash", "sh", "shell", "console"})
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Command:
    """One command of a document: its text, where it was written, its block."""

    text: str
    source: str
    line: int
    block: int

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass(frozen=True)
class Substitution:
    """``pattern`` (regex) in a command becomes ``replacement`` (None: the command is skipped)."""

    pattern: str
    replacement: str | None
    why: str
    ok_codes: tuple[int, ...] = (0,)


#: What the test changes in the documented commands, and why.  Sizes only; never a name.
SUBSTITUTIONS: tuple[Substitution, ...] = (
    Substitution(r"^pip install tox && tox\b.*$", None, "tox runs the test suite, this test included"),
    Substitution(r"^pip install -e (\.|\"\.\[test\]\"|'\.\[test\]') && ", "",
                 "the checkout under test is already importable (PYTHONPATH)"),
    Substitution(r"^pip install .*$", None, "the checkout under test is already importable (PYTHONPATH)"),
    Substitution(r"(mxt campaign run .*)--n 200\b", r"\1--n 2", "2 runs instead of 200"),
    Substitution(r"^python -m harness run$",
                 "python -m harness run --skip replay,pipeline,checks,localization,ensemble,timing,coverage",
                 "the golden checks only: the replay and its checks take minutes and the coverage step runs the "
                 "whole test suite (this test included); tox -e regression runs them all"),  # fmt: skip
    Substitution(r"(acceptance\.detection) --n 200 --min-detected 400$", r"\1 --n 1 --min-detected 1 --max-runs 2 --calibrate 1 "
                 "--reference 1", "one or two runs per case; the acceptance criteria cannot hold on so few "
                 "(exit 1)", ok_codes=(0, 1)),  # fmt: skip
    Substitution(r"--calibrate-levels 1000\b", "--calibrate-levels 1", "1 detected run per level"),
    Substitution(r"^mxt run \S+ --from-telemetry ", r"\g<0>", "the documented downlink loses packets: the run is "
                 "PARTIAL (exit 3) by design, the lost time recorded as TELEMETRY gaps", ok_codes=(0, 3)),
    Substitution(r"^mxt run golden/telemetry_downlink/input ", r"\g<0>", "the golden downlink loses packets: PARTIAL "
                 "(exit 3) by design", ok_codes=(0, 3)),
    Substitution(r"^(python tools/mutation\.py run) --per-package 0 --jobs 8\b", r"\1 --package gti --per-package 1",
                 "one mutant of the smallest package: every mutant takes days on two cores"),
    Substitution(r"^(python tools/mutation\.py run --layer golden) --per-package 4\b", r"\1 --package gti --per-package 1",
                 "one mutant against the golden replay instead of four per package (each costs a replay)"),
)


def commands_of(text: str, source: str) -> list[Command]:
    """The commands of the runnable blocks of a Markdown document, in order."""
    out: list[Command] = []
    lines = text.splitlines()
    i = 0
    block = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m["fence"], (m["info"].split() or [""])[0].lower()
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        block += 1
        if lang in RUN_LANGS:
            out += _block_commands(lines[start:j], source, start + 1, block, console=lang == "console")
        i = j + 1
    return out


def _block_commands(body: list[str], source: str, first_line: int, block: int, *, console: bool) -> list[Command]:
    cmds: list[Command] = []
    pending: list[str] = []
    at = 0
    for k, raw in enumerate(body):
        line = raw.rstrip()
        if not pending:
            if console:
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            at = first_line + k
        pending.append(line)
        if line.endswith("\\"):
            continue
        cmds.append(Command(_strip_comment("\n".join(pending)), source, at, block))
        pending = []
    if pending:
        cmds.append(Command(_strip_comment("\n".join(pending)), source, at, block))
    return cmds


def _strip_comment(cmd: str) -> str:
    """The command without its trailing ``# comment``: the first ``#`` outside quotes
    that starts a word (``a#b`` and ``"#"`` are kept, as bash does)."""
    quote = None
    for pos, ch in enumerate(cmd):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (pos == 0 or cmd[pos - 1].isspace()):
            return cmd[:pos].rstrip()
    return cmd.strip()


def apply_substitutions(cmd: str, table: tuple[Substitution, ...] = SUBSTITUTIONS) -> tuple[str | None, tuple[int, ...]]:
    """The command to run (None: skipped) and the exit codes that count as success."""
    ok: tuple[int, ...] = (0,)
    for sub in table:
        if re.search(sub.pattern, cmd):
            if sub.replacement is None:
                return None, ok
            cmd = re.sub(sub.pattern, sub.replacement, cmd)
            ok = tuple(sorted(set(ok) | set(sub.ok_codes)))
    return cmd, ok


@dataclass
class Session:
    """Runs commands in ``cwd`` with ``env``; background services live until their block ends."""

    cwd: Path
    env: dict[str, str]
    timeout_s: float = 600.0
    log: list[str] = field(default_factory=list)
    _services: list[tuple[Command, subprocess.Popen]] = field(default_factory=list)

    def run(self, cmd: Command) -> None:
        """Run one command; AssertionError naming the file and line when it fails."""
        text, ok = apply_substitutions(cmd.text)
        if text is None:
            self.log.append(f"skipped  {cmd.where}: {cmd.text}")
            return
        if text.endswith("&"):
            self._start_service(cmd, text[:-1].rstrip())
            return
        t0 = time.monotonic()
        try:
            proc = subprocess.run(["bash", "-o", "pipefail", "-c", text], cwd=self.cwd, env=self.env, capture_output=True,
                                  text=True, timeout=self.timeout_s, check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{cmd.where}: `{text}` did not finish in {self.timeout_s:.0f} s") from None
        self.log.append(f"{time.monotonic() - t0:6.1f} s  {cmd.where}: {text}")
        if proc.returncode not in ok:
            tail = (proc.stdout[-1500:] + "\n" + proc.stderr[-3000:]).strip()
            raise AssertionError(f"{cmd.where}: `{text}` exited {proc.returncode}\n{tail}")

    def _start_service(self, cmd: Command, text: str) -> None:
        proc = subprocess.Popen(["bash", "-c", text], cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
        self._services.append((cmd, proc))
        port = re.search(r"--port[ =](\d+)", text)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"{cmd.where}: the service `{text}` stopped (exit {proc.returncode})\n{out[-3000:]}")
            if port is None:
                if time.monotonic() > deadline - 55:  # alive for 5 s
                    break
            else:
                with socket.socket() as s:
                    s.settimeout(0.5)
                    if s.connect_ex(("127.0.0.1", int(port[1]))) == 0:
                        break
            time.sleep(0.2)
        else:
            raise AssertionError(f"{cmd.where}: the service `{text}` did not start listening in 60 s")
        self.log.append(f"service  {cmd.where}: {text}")

    def end_block(self) -> None:
        """Stop the services started in the block."""
        for _, proc in self._services:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            if proc.stdout:
                proc.stdout.close()
        self._services.clear()
