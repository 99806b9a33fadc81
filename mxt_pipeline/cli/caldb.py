"""``mxt caldb``: search, download, upload, index and serve the calibration database.

::

    mxt caldb search MXT psf --date 2025-03-01 --expr energy.eq.1.5
    mxt caldb download MXT teldef -o calib/
    mxt caldb upload MXT_EVTTHR_20250301T120000_v01.yaml --url http://caldb:8500
    mxt caldb index --root fixtures_caldb --instrument MXT
    mxt caldb serve --root /data/caldb --host 127.0.0.1 --port 8500 --token-file tokens.txt

Without ``--url``/``--root`` the client uses ``$MXT_CALDB_URL``, then ``$CALDB``, then
the bundled ``fixtures_caldb/``.  The token (remote) comes from ``--runtime-data``
(``runtime_data.json``) or ``$MXT_TOKEN``; it is never printed.

The service accepts the tokens of ``$MXT_CALDB_TOKENS`` and/or ``--token-file``
(``MXT_TOKEN`` is the *client's* variable).  Its own state (SQLite index, upload
staging) goes to ``--state-dir``, by default ``$MXT_CALDB_STATE_DIR`` or a folder per
CALDB root under ``$XDG_STATE_HOME/mxt`` (``~/.local/state/mxt``), never inside the
served root.
"""

from __future__ import annotations

import json

import click

from mxt_pipeline.cli.service_state import service_state_dir
from mxt_pipeline.cli.vocabulary import CALDB_ROOT_HELP, CALDB_URL_HELP
from mxt_pipeline.errors import MXTAuthError
from mxt_pipeline.extras import require

__all__ = ["command"]


def _client(url: str | None, root: str | None, runtime_data: str | None, no_token: bool, max_tries: int):
    # lazy: mxt --help imports every command module (cli/main.py); the client loads httpx and rich
    from mxt_pipeline.caldb import CaDBIO

    try:
        return CaDBIO(use_tokens=not no_token, max_tries=max_tries, url=url, caldb=root, runtime_data=runtime_data)
    except MXTAuthError as exc:
        # The library speaks of its arguments; the command line user needs the options.
        raise MXTAuthError("no token for the CALDB service: set MXT_TOKEN, or give --runtime-data FILE (a JSON file "
                           "with a 'token' key), or --no-token for a service started with --allow-anonymous",
                           status=exc.status) from None  # fmt: skip


def _backend_options(f):
    f = click.option("--max-tries", default=5, show_default=True, help="HTTP attempts per request.")(f)
    f = click.option("--no-token", is_flag=True, help="Send no token (service started with --allow-anonymous).")(f)
    f = click.option(
        "--runtime-data", type=click.Path(dir_okay=False), help="runtime_data.json holding the token."
    )(f)
    f = click.option("--root", type=click.Path(file_okay=False), help=CALDB_ROOT_HELP)(f)
    f = click.option("--url", help=CALDB_URL_HELP)(f)
    return f


def _query_options(f):
    f = click.option("--filter", "filter_", default="-", show_default=True, help="FILTER ('-': any).")(f)
    f = click.option("--detnam", default="-", show_default=True, help="DETNAM ('-': any).")(f)
    f = click.option("--expr", default=None, help="Boundary expression, e.g. energy.eq.1.5.")(f)
    f = click.option("--time", "time_", default=None, help="hh:mm:ss with a date-only --date.")(f)
    f = click.option("--date", default="now", show_default=True, help="'now', '-', YYYY-MM-DD[Thh:mm:ss].")(f)
    return f


@click.group("caldb")
def command() -> None:
    """Calibration database: search, download, upload, index, serve."""


@command.command("search")
@click.argument("instrument")
@click.argument("codename")
@_query_options
@_backend_options
@click.option("--json", "as_json", is_flag=True, help="Print the selected rows as JSON.")
def search_cmd(instrument, codename, date, time_, expr, detnam, filter_, url, root, runtime_data, no_token,
               max_tries, as_json) -> None:  # fmt: skip
    """List the datasets INSTRUMENT/CODENAME selects (quzcif rules); fetch nothing."""
    with _client(url, root, runtime_data, no_token, max_tries) as client:
        entries = client.entries(instrument, codename, date=date, time=time_, expr=expr, detnam=detnam, filter=filter_)
    if as_json:
        out = [{"cif": e.row.as_record(), "sha256": e.sha256, "type": e.product_type} for e in entries]
        click.echo(json.dumps(out, indent=1))
        return
    for e in entries:
        r = e.row
        cbd = ",".join(b for b in r.cal_cbd if b != "NONE") or "-"
        click.echo(f"{r.relpath}[{r.cal_xno}]  {r.cal_cnam}  valid from {r.cal_vsd}T{r.cal_vst}  {cbd}  {e.product_type}")


@command.command("download")
@click.argument("instrument")
@click.argument("codename")
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False), help="Download folder.")
@_query_options
@_backend_options
def download_cmd(instrument, codename, output, date, time_, expr, detnam, filter_, url, root, runtime_data,
                 no_token, max_tries) -> None:  # fmt: skip
    """Download the files INSTRUMENT/CODENAME selects into OUTPUT; print their paths."""
    with _client(url, root, runtime_data, no_token, max_tries) as client:
        paths = client.search(
            instrument, codename, output, date=date, time=time_, expr=expr, detnam=detnam, filter=filter_
        )
    for p in paths:
        click.echo(str(p))


@command.command("upload")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--node", default=None, help="Storage node MXT, ECL or VT (default: from the file name).")
@_backend_options
def upload_cmd(file, node, url, root, runtime_data, no_token, max_tries) -> None:
    """Upload FILE: a FITS calibration file with CALDB keywords, or an upload-class YAML
    named <INSTRUMENT>_<CODENAME>_<YYYYMMDDTHHMMSS>_v<NN>.yaml."""
    with _client(url, root, runtime_data, no_token, max_tries) as client:
        result = client.upload(file, node)
    click.echo(json.dumps(result, indent=1))


@command.command("index")
@click.option("--root", required=True, type=click.Path(file_okay=False, exists=True), help="CALDB root folder.")
@click.option("--instrument", "instruments", multiple=True, default=("MXT",), show_default=True,
              help="Instrument(s) to index.")  # fmt: skip
@click.option("--telescop", default="SVOM", show_default=True)
@click.option("--quality", multiple=True, metavar="FILE=Q", help="CAL_QUAL override, e.g. psf_v1.fits=5.")
def index_cmd(root, instruments, telescop, quality) -> None:
    """Rebuild caldb.indx of each instrument from the files' CALDB keywords."""
    # lazy: mxt --help imports every command module (cli/main.py); the caldb package loads httpx and rich
    from mxt_pipeline.caldb import build_index

    overrides: dict[str, int] = {}
    for item in quality:
        name, sep, value = item.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            raise click.BadParameter(f"{item!r} is not FILE=QUALITY", param_hint="--quality")
        overrides[name.strip()] = int(value)
    if overrides and len(instruments) > 1:
        raise click.BadParameter("give --quality with a single --instrument", param_hint="--quality")
    for inst in instruments:
        click.echo(str(build_index(root, telescop, inst.upper(), overrides or None)))


@command.command("serve")
@click.option("--root", required=True, type=click.Path(file_okay=False), help="CALDB root folder to serve.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8500, show_default=True, type=int)
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True),
              help="Tokens the service accepts, one per line (and/or $MXT_CALDB_TOKENS; MXT_TOKEN is the client's).")  # fmt: skip
@click.option("--max-upload-mb", default=256, show_default=True, type=int)
@click.option("--allow-anonymous", is_flag=True, help="No authentication (local development only).")
@click.option("--log-level", default="info", show_default=True)
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="Service state: SQLite index, upload staging (default: $MXT_CALDB_STATE_DIR, else a folder per "
                   "root under $XDG_STATE_HOME/mxt; never inside ROOT).")  # fmt: skip
def serve_cmd(root, host, port, token_file, max_upload_mb, allow_anonymous, log_level, state_dir) -> None:
    """Serve the CALDB at ROOT over HTTP (Starlette + uvicorn, from the pip extra 'service')."""
    for module in ("starlette", "uvicorn"):
        require(module, "service", "mxt caldb serve")
    # lazy: the service's optional extra (starlette, uvicorn), checked by require() just above
    from mxt_pipeline.caldb.service.server import serve

    serve(
        root, host, port, token_file=token_file, max_upload_bytes=max_upload_mb * 1024 * 1024,
        allow_anonymous=allow_anonymous, log_level=log_level, state_dir=state_dir or default_state_dir(root),
    )  # fmt: skip


def default_state_dir(root: str) -> str:
    """The service state folder of ``root`` outside it: ``$MXT_CALDB_STATE_DIR``, else
    ``$XDG_STATE_HOME/mxt/caldb-<name>-<hash of the root's path>`` (``~/.local/state`` by
    default).  One folder per root, so serving two CALDBs never mixes their indexes."""
    return service_state_dir(root, "caldb")
