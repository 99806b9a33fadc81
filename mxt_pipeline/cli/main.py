"""Entry point of the ``mxt`` command.

Subcommands live in their own modules (``mxt_pipeline/cli/<name>.py``, attribute
``command``) and are imported only when invoked, so ``mxt --help`` stays fast and a
broken optional dependency of one subcommand does not break the others.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys

import click

from mxt_pipeline._version import __version__
from mxt_pipeline.cli.runner import run_group
from mxt_pipeline.errors import MXTError

#: subcommand name -> module holding a click ``command``: a name under mxt_pipeline.cli,
#: or a dotted module path for an application above the command line (the console,
#: which sits on top of the pipelines and the harness).
SUBCOMMANDS: dict[str, str] = {
    "validate": "validate",
    "caldb": "caldb",
    "attitude": "attitude",
    "simulate": "simulate",
    "calibrate": "calibrate",
    "detect": "detect",
    "lightcurve": "lightcurve",
    "run": "run",
    "campaign": "campaign",
    "compare": "compare",
    "preprocess": "preprocess",
    "console": "mxt_pipeline.console.command",
}


def _module_name(mod: str) -> str:
    return mod if "." in mod else f"mxt_pipeline.cli.{mod}"


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        names = [name for name, mod in SUBCOMMANDS.items() if importlib.util.find_spec(_module_name(mod)) is not None]
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        mod = SUBCOMMANDS.get(name)
        if mod is None or importlib.util.find_spec(_module_name(mod)) is None:
            return None
        return importlib.import_module(_module_name(mod)).command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mxt")
@click.option("-v", "--verbose", count=True, help="More log output: warnings by default, -v info, -vv debug.")
def cli(verbose: int) -> None:
    """SVOM/MXT ground pipeline: simulate, calibrate, detect, light curves, pipelines."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    # The level goes on the terminal handler too: a run raises the package's loggers to
    # INFO for its run.log, and those records must not reach the terminal without -v.
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; MXTError becomes a one-line message and exit status 2."""
    return run_group(cli, argv, "mxt", handled=(MXTError,))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
