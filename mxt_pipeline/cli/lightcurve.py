"""``mxt lightcurve L2.fits --srclist SRCLIST.fits --out DIR``: the ``lightcurves`` brick, run alone.

The options after ``--trigger`` are the brick's declared parameters (generated from
them: ``mxt run -p lightcurves.NAME=VALUE`` takes the same names and defaults).
"""

from __future__ import annotations

from pathlib import Path

import click

from mxt_pipeline.cli.brick_options import parameter_options, parameter_values
from mxt_pipeline.io import read_header
from mxt_pipeline.pipelines.bricks.lightcurves import LIGHTCURVES
from mxt_pipeline.pipelines.runtime import Target
from mxt_pipeline.pipelines.standalone import Placement, run_brick_to


@click.command("lightcurve")
@click.argument("l2", type=click.Path(exists=True, dir_okay=False))
@click.option("--srclist", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Source list (MXT-SOP-SKY).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--caldb", default=None,
              help="CALDB root folder or service URL (default: $CALDB, else the bundled synthetic CALDB).")
@click.option("--trigger", "trigger", type=float, default=None,
              help="GRB trigger time (s since MJDREF): stored as TRIGTIME, log-log previews of the time since it.")
@parameter_options(LIGHTCURVES)
def command(l2: str, srclist: str, out: str, caldb: str | None, trigger: float | None, **kwargs) -> None:
    """Light curves of the sources of SRCLIST from the L2 event file L2, written to OUT.

    One OGIP light curve (MXT_LC: RATE with asymmetric errors and FRACEXP, GTI, GAPS)
    and one PNG preview (gaps shaded with their origin) per source.
    """
    params = parameter_values(LIGHTCURVES, kwargs)
    inputs = {"events": l2, "srclist": srclist}
    target = None
    if trigger is not None:
        obs_id = str(read_header(l2).get("OBS_ID") or "standalone")
        target = Target(obs_id=obs_id, mode="XBAND-CP", trigger_time=float(trigger))
        inputs["target"] = target
    folder = Path(out)
    placements = {"light_curves": Placement(folder, folder=True), "lc_previews": Placement(folder, folder=True)}
    result, kept = run_brick_to(LIGHTCURVES, inputs, params, placements, caldb=caldb, target=target)
    curves = kept.get("light_curves", [])
    previews = {p.stem: p for p in kept.get("lc_previews", [])}
    n_bins = result.metrics.get("n_bins", {})
    for path in curves:
        key = path.stem.rsplit("_", 1)[-1]
        extra = f" and {previews[path.stem].name}" if path.stem in previews else ""
        click.echo(f"{key}: {n_bins.get(key, '?')} bins -> {path}{extra}")
    if not curves:
        click.echo(f"no light curve written ({result.status}): the source list has no source")
