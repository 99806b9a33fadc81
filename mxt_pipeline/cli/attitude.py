"""``mxt attitude``: serve reconstructed attitude by time range, index an archive, fetch.

::

    mxt attitude index --root /data/att
    mxt attitude serve --root /data/att --host 127.0.0.1 --port 8510 --token-file tokens.txt
    mxt attitude fetch 3.0e8 3.0e8+1000 --url http://127.0.0.1:8510 -o att.fits

The service accepts the tokens of ``$MXT_ATTITUDE_TOKENS`` and/or ``--token-file``; the
client sends the one FSC token (``$MXT_TOKEN`` or ``--runtime-data``), never printed.
The SQLite index goes to ``--state-dir``, by default ``$MXT_ATTITUDE_STATE_DIR`` or a
folder per archive under ``$XDG_STATE_HOME/mxt``, never inside the served root.
"""

from __future__ import annotations

import json

import click

from mxt_pipeline.cli.service_state import service_state_dir
from mxt_pipeline.extras import require

__all__ = ["command", "default_state_dir"]


def default_state_dir(root: str) -> str:
    """The index folder of the archive ``root``: ``$MXT_ATTITUDE_STATE_DIR``, else
    ``$XDG_STATE_HOME/mxt/attitude-<name>-<hash of the root's path>``."""
    return service_state_dir(root, "attitude")


@click.group("attitude")
def command() -> None:
    """Attitude service: reconstructed attitude by time range from an archive of ATT files."""


@command.command("index")
@click.option("--root", required=True, type=click.Path(file_okay=False, exists=True), help="Folder of ATT files.")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="Where the SQLite index goes (default: $MXT_ATTITUDE_STATE_DIR, else under $XDG_STATE_HOME/mxt).")  # fmt: skip
def index_cmd(root, state_dir) -> None:
    """Build or update the index of ROOT; print its rows (JSON) and the changes (stderr)."""
    # lazy: mxt --help imports every command module; the archive loads astropy
    from mxt_pipeline.attitude.archive import AttitudeArchive

    archive = AttitudeArchive(root, state_dir=state_dir or default_state_dir(root), build=False)
    try:
        counts = archive.refresh()
        click.echo(json.dumps(archive.files(), indent=1))
    finally:
        archive.close()
    click.echo(", ".join(f"{v} {k}" for k, v in counts.items()), err=True)


@command.command("serve")
@click.option("--root", required=True, type=click.Path(file_okay=False, exists=True), help="Folder of ATT files.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8510, show_default=True, type=int)
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True),
              help="Tokens the service accepts, one per line (and/or $MXT_ATTITUDE_TOKENS; MXT_TOKEN is the client's).")  # fmt: skip
@click.option("--allow-anonymous", is_flag=True, help="No authentication (local development only).")
@click.option("--rescan-s", default=60.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between rescans of ROOT for new, changed or removed files.")
@click.option("--max-concurrent", default=32, show_default=True, type=click.IntRange(min=1),
              help="Requests served at once; one more is answered 503 with Retry-After.")
@click.option("--log-level", default="info", show_default=True)
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="Where the SQLite index goes (default: $MXT_ATTITUDE_STATE_DIR, else under $XDG_STATE_HOME/mxt).")  # fmt: skip
def serve_cmd(root, host, port, token_file, allow_anonymous, rescan_s, max_concurrent, log_level, state_dir) -> None:
    """Serve the attitude of the ATT files under ROOT over HTTP (pip extra 'service')."""
    for module in ("starlette", "uvicorn"):
        require(module, "service", "mxt attitude serve")
    # lazy: the service's optional extra (starlette, uvicorn), checked by require() just above
    from mxt_pipeline.attitude.server import serve

    serve(root, host, port, token_file=token_file, allow_anonymous=allow_anonymous, log_level=log_level,
          state_dir=state_dir or default_state_dir(root), rescan_s=rescan_s, max_concurrent=max_concurrent)  # fmt: skip


@command.command("fetch")
@click.argument("tstart", type=float)
@click.argument("tstop", type=float)
@click.option("--url", default=None, help="Attitude service URL (default: $MXT_ATTITUDE_URL).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="MXT_ATT file to write.")
@click.option("--runtime-data", type=click.Path(dir_okay=False), help="runtime_data.json holding the token.")
@click.option("--max-tries", default=5, show_default=True, type=click.IntRange(1, 20), help="HTTP attempts.")
@click.option("--max-gap-s", default=60.0, show_default=True, type=float, help="Sampling gaps reported longer than this.")
def fetch_cmd(tstart, tstop, url, output, runtime_data, max_tries, max_gap_s) -> None:
    """Fetch the attitude of [TSTART, TSTOP] (mission seconds) into OUTPUT; print what came."""
    # lazy: the client loads httpx
    from mxt_pipeline.errors import MXTInputError
    from mxt_pipeline.io.fits import atomic_write_bytes
    from mxt_pipeline.services.attitude import AttitudeClient, resolve_attitude_url

    service = resolve_attitude_url(url)
    if service is None:
        raise MXTInputError("no attitude service: give --url or set MXT_ATTITUDE_URL", keyword="url")
    # The answer lands in the client's scratch folder, removed on close once copied to OUTPUT.
    with AttitudeClient(service, runtime_data=runtime_data, max_tries=max_tries) as client:
        got = client.fetch(tstart, tstop, max_gap_s=max_gap_s)
        atomic_write_bytes(output, got.path.read_bytes())
    click.echo(got.describe())
