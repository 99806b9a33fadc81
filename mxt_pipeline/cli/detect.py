"""``mxt detect L2.fits --out SRCLIST.fits``: source detection of one observation."""

from __future__ import annotations

import click

from mxt_pipeline.detect.bands import parse_bands
from mxt_pipeline.errors import MXTInputError


@click.command("detect")
@click.argument("l2", type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Source list to write (MXT-SOP-SKY).")
@click.option("--bands", default="0.2-2,2-10", show_default=True, help="Energy bands in keV, 'lo-hi,lo-hi,...'.")
@click.option("--caldb", default=None, help="CALDB root directory or service URL (default: $CALDB, else the bundled set).")
@click.option("--att", "attitude", default=None, type=click.Path(dir_okay=False), help="Attitude file (MXT_ATT).")
@click.option("--region", default=None, type=click.Path(dir_okay=False), help="DS9 region file (default: OUT with .reg).")
@click.option("--threshold", type=float, default=None, help="DET_ML threshold (default: the calibrated one).")
def command(l2: str, out: str, bands: str, caldb: str | None, attitude: str | None, region: str | None,
            threshold: float | None) -> None:
    """Detect the sources of the L2 event file L2 and write their list to OUT.

    Two stages (histogram fit of the RAWY/RAWZ projections, then the multi-band,
    multi-source Cash-statistic maximum likelihood), profile-likelihood errors with the
    CALDB systematic, DET_ML and the alert quality factor; a DS9 region file beside.
    """
    from dataclasses import replace

    from mxt_pipeline.detect.pipeline import DetectionParameters, detect_file
    from mxt_pipeline.io import read_product

    try:
        band_list = parse_bands(bands)
    except MXTInputError as exc:
        raise click.BadParameter(str(exc), param_hint="--bands") from None
    params = DetectionParameters()
    if threshold is not None:
        params = replace(params, det_ml_threshold=threshold)
    path = detect_file(l2, out, caldb, bands=band_list, params=params, attitude_path=attitude, region_path=region)
    n = len(read_product(path, "MXT_SOP_SKY").table("SRCLIST"))
    click.echo(f"{path}: {n} source(s) with DET_ML >= {params.det_ml_threshold:g}")
