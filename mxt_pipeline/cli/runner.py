"""Run a click group as a function returning the exit status (``mxt`` and ``python -m harness``)."""

from __future__ import annotations

from collections.abc import Sequence

import click

__all__ = ["run_group"]


def run_group(group: click.Group, argv: Sequence[str] | None, prog_name: str,
              handled: tuple[type[Exception], ...] = ()) -> int:
    """Invoke ``group`` on ``argv`` and return its exit status instead of exiting.

    Usage errors are shown by click (status 2), an abort gives 130, and an exception of
    a ``handled`` type becomes the one-line message ``<prog>: error: <exc>`` (status 2).
    """
    try:
        rv = group.main(args=None if argv is None else list(argv), prog_name=prog_name, standalone_mode=False)
        if isinstance(rv, int):
            return rv
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except handled as exc:
        click.echo(f"{prog_name}: error: {exc}", err=True)
        return 2
    return 0
