"""``mxt calibrate DATASET --out L2.fits``: the ``calibrate`` brick, run alone.

The options after ``--saa-url`` are the brick's declared parameters (generated from
them, so ``mxt run -p calibrate.NAME=VALUE`` takes the same names and defaults).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from mxt_pipeline.cli.brick_options import parameter_options, parameter_values
from mxt_pipeline.pipelines.bricks.calibrate import CALIBRATE
from mxt_pipeline.pipelines.runtime import ObservationInputs
from mxt_pipeline.pipelines.standalone import Placement, run_brick_to
from mxt_pipeline.services.tokens import Secret, resolve_token


@click.command("calibrate")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="L2 event file to write.")
@click.option("--caldb", default=None,
              help="CALDB root folder or service URL (default: $CALDB, else the bundled synthetic CALDB).")
@click.option("--report", "report", type=click.Path(dir_okay=False), default=None,
              help="Also write the calibration report (JSON) there.")
@click.option("--saa-url", default=None,
              help="Science-database URL of the weekly SAA files (default: the dataset's saa/ folder); "
                   "token from $MXT_TOKEN.")  # fmt: skip
@parameter_options(CALIBRATE)
def command(dataset: str, out: str, caldb: str | None, report: str | None, saa_url: str | None, **kwargs) -> None:
    """Calibrate DATASET (dataset.json, l1/, aux/, saa/) and write the L2 events (EVENTS, GTI, GAPS)."""
    params = parameter_values(CALIBRATE, kwargs)
    observation = ObservationInputs.from_dataset(dataset)
    services = {}
    if saa_url:
        observation = replace(observation, saa_dir=None)
        token = resolve_token()
        services = {"sdb_url": saa_url, "token": Secret(token) if token else None}
    placements = {"events": Placement(Path(out))}
    if report:
        placements["calibration_report"] = Placement(Path(report))
    result, _ = run_brick_to(CALIBRATE, {"observation": observation}, params, placements, caldb=caldb,
                             services=services)  # fmt: skip
    m = result.metrics
    lost = {k: round(v, 1) for k, v in (m.get("lost_s_by_origin") or {}).items() if v}
    hot = len(result.values["calibration_report"].get("hot_pixels", []))
    click.echo(f"{out}: {m['n_events']} events, ONTIME {m['ontime_s']:.1f} s from {m['n_passes']} pass(es), "
               f"{m['n_hits_read']} hits read, {hot} hot pixel(s) found; time lost by origin: {lost or 'none'} "
               f"[{result.status}]")  # fmt: skip
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
