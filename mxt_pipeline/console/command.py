"""``mxt console``: the operations console on an output root (see docs/console.md).

``mxt console --root OUT_DIR [--host 127.0.0.1] [--port 8765]`` serves the runs found
under ``OUT_DIR``.  Operators log in with their FSC token: the console accepts the
token of ``$MXT_TOKEN`` and those of ``--token-file`` (one per line, ``chmod 600``);
the token is never an option (command lines are visible to every user).
"""

from __future__ import annotations

from pathlib import Path

import click

from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.extras import require

__all__ = ["command"]


def _caldb_choices(values: tuple[str, ...]) -> list:
    # lazy: mxt --help imports this module (cli/main.py); jobs loads multiprocessing and subprocess
    from mxt_pipeline.console.jobs import CaldbChoice

    out = [CaldbChoice("default", None, "$CALDB or the bundled synthetic CALDB")]
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise MXTInputError(f"--caldb expects NAME=PATH, got {v!r}")
        p = Path(path.strip()).expanduser()
        if not (p / "data").is_dir() and not any(p.rglob("caldb.indx")):
            raise MXTInputError("not a CALDB root (no caldb.indx below it)", file=p)
        out.append(CaldbChoice(name.strip(), str(p.resolve()), p.name))
    return out


def _default_reports() -> Path | None:
    """The project's reports/ beside the package (a source checkout), else none."""
    p = Path(__file__).resolve().parents[2] / "reports"
    return p if p.is_dir() else None


@click.command("console")
@click.option("--root", "root", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Output root to serve: output folders of `mxt run` (the folder itself or its sub-folders).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Accepted operator tokens, one per line (besides $MXT_TOKEN).")
@click.option("--caldb", "caldbs", multiple=True, metavar="NAME=PATH",
              help="A CALDB root operators may choose when reprocessing (repeatable).")
@click.option("--scheduler", default=None, help="The campaign's dask scheduler, tcp://HOST:PORT (reprocessing runs there).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Local reprocessing processes (without --scheduler).")
@click.option("--reports", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="The harness's report folder (default: reports/ of the source checkout).")
@click.option("--secure-cookies", is_flag=True, help="Mark cookies Secure (behind an HTTPS proxy).")
def command(root, host, port, token_file, caldbs, scheduler, workers, reports, secure_cookies) -> None:
    """Serve the operations console on ROOT: runs, products, reprocessing, harness."""
    for module in ("starlette", "jinja2"):
        require(module, "service", "mxt console")
    uvicorn = require("uvicorn", "service", "mxt console")

    # lazy: mxt --help imports this module (cli/main.py); the web stack (starlette, uvicorn, jinja2) only for mxt console
    from mxt_pipeline.console.app import ConsoleConfig, create_app
    from mxt_pipeline.console.auth import operator_tokens

    tokens = operator_tokens(token_file)
    config = ConsoleConfig(root, tokens, caldbs=_caldb_choices(caldbs), scheduler=scheduler, workers=workers,
                           reports=reports if reports is not None else _default_reports(),
                           secure_cookies=secure_cookies)  # fmt: skip
    app = create_app(config)
    click.echo(f"MXT console on http://{host}:{port}/ serving {config.root} "
               f"({len(tokens)} accepted token(s); log in with your operator token)")  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)
