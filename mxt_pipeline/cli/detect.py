"""``mxt detect L2.fits --out SRCLIST.fits``: the ``detect`` brick, run alone.

The options after ``--region`` are the brick's declared parameters (generated from
them: ``mxt run -p detect.NAME=VALUE`` takes the same names and defaults).  The DET_ML
threshold and the error levels default to the validated ones of the CALDB.
"""

from __future__ import annotations

from pathlib import Path

import click

from mxt_pipeline.cli.brick_options import parameter_options, parameter_values
from mxt_pipeline.pipelines.bricks.detect import DETECT
from mxt_pipeline.pipelines.standalone import Placement, run_brick_to


@click.command("detect")
@click.argument("l2", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Source list to write (MXT-SOP-SKY).")
@click.option("--caldb", default=None,
              help="CALDB root folder or service URL (default: $CALDB, else the bundled synthetic CALDB).")
@click.option("--att", "attitude", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Attitude file (MXT_ATT): positions through the reference attitude.")
@click.option("--region", default=None, type=click.Path(dir_okay=False),
              help="DS9 region file to write (default: OUT with .reg).")
@parameter_options(DETECT)
def command(l2: str, out: str, caldb: str | None, attitude: str | None, region: str | None, **kwargs) -> None:
    """Detect the sources of the L2 event file L2 and write their list to OUT.

    Two stages (histogram fit of the RAWY/RAWZ projections, then the multi-band,
    multi-source Cash-statistic maximum likelihood), profile-likelihood errors with the
    CALDB systematic, DET_ML and the alert quality factor; a DS9 region file beside.
    """
    params = parameter_values(DETECT, kwargs)
    inputs = {"events": l2}
    if attitude:
        inputs["attitude"] = attitude
    placements = {"srclist": Placement(Path(out)),
                  "regions": Placement(Path(region) if region else Path(out).with_suffix(".reg"))}  # fmt: skip
    result, _ = run_brick_to(DETECT, inputs, params, placements, caldb=caldb)
    threshold = result.effective.get("det_ml_threshold")
    click.echo(f"{out}: {result.metrics['n_sources']} source(s) with DET_ML >= {threshold:g} [{result.status}]")
