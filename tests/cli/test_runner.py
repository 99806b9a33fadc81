"""``run_group``: a click group run as a function returning its exit status."""

from __future__ import annotations

import click
import pytest

from mxt_pipeline.cli.runner import run_group
from mxt_pipeline.errors import MXTError, MXTInputError


@click.group()
def demo() -> None:
    """A test group."""


@demo.command()
@click.argument("what")
def do(what: str) -> None:
    if what == "fail":
        raise MXTInputError("bad input", keyword="WHAT")
    if what == "abort":
        raise click.exceptions.Abort()
    if what == "exit3":
        raise SystemExit(3)
    if what == "crash":
        raise RuntimeError("not handled")
    click.echo(f"did {what}")


@pytest.mark.parametrize(("argv", "status"), [(["do", "x"], 0), (["do", "exit3"], 3), (["do", "abort"], 130),
                                              (["nope"], 2), (["--help"], 0)])
def test_exit_statuses(argv, status):
    assert run_group(demo, argv, "demo", handled=(MXTError,)) == status


def test_handled_errors_become_one_line_and_others_propagate(capsys):
    assert run_group(demo, ["do", "fail"], "demo", handled=(MXTError,)) == 2
    err = capsys.readouterr().err
    assert err.startswith("demo: error: ") and "bad input" in err and "WHAT" in err
    with pytest.raises(MXTInputError):
        run_group(demo, ["do", "fail"], "demo")
    with pytest.raises(RuntimeError):
        run_group(demo, ["do", "crash"], "demo", handled=(MXTError,))
