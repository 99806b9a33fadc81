"""``mxt validate FILE...``: check products against their formats and schemas."""

from __future__ import annotations

import sys

import click

from mxt_pipeline.io.validate import validate_file


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-q", "--quiet", is_flag=True, help="Print only the violations.")
def command(files: tuple[str, ...], quiet: bool) -> None:
    """Validate FILES (any MXT product or CALDB index); list every violation.

    Exits with status 1 when at least one file has a violation.
    """
    n_bad = 0
    for path in files:
        violations = validate_file(path)
        if violations:
            n_bad += 1
            click.echo(f"{path}: {len(violations)} violation(s)")
            for v in violations:
                click.echo(f"  - {v}")
        elif not quiet:
            click.echo(f"{path}: OK")
    if n_bad:
        click.echo(f"{n_bad} of {len(files)} file(s) invalid", err=True)
        sys.exit(1)
