"""``mxt calibrate DATASET --out L2.fits``: L1 raw passes -> L2 calibrated event file."""

from __future__ import annotations

from dataclasses import replace

import click


@click.command("calibrate")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="L2 event file to write.")
@click.option("--caldb", type=click.Path(exists=True, file_okay=False), default=None,
              help="Local CALDB root (default: $CALDB, else the bundled one; $MXT_CALDB_URL for the service).")
@click.option("--report", "report", type=click.Path(dir_okay=False), default=None,
              help="Write the calibration report (JSON) there.")
@click.option("--saa-url", default=None, help="Science-database URL of the weekly SAA files (default: DATASET/saa).")
@click.option("--no-cti", is_flag=True, help="Switch the CTI correction off (diagnostics).")
@click.option("--no-hot-pixels", is_flag=True, help="Do not search the data for hot pixels.")
def command(dataset: str, out: str, caldb: str | None, report: str | None, saa_url: str | None,
            no_cti: bool, no_hot_pixels: bool) -> None:  # fmt: skip
    """Calibrate DATASET (dataset.json, l1/, aux/, saa/) and write the L2 events (EVENTS, GTI, GAPS)."""
    from mxt_pipeline.calib.chain import ChainParams, calibrate_dataset

    params = replace(ChainParams(), cti_correction=not no_cti, hot_pixel_search=not no_hot_pixels)
    events, rep = calibrate_dataset(dataset, caldb, out=out, report_path=report, saa_url=saa_url, params=params)
    drop = {k: v for k, v in rep.ingest.dropped.items() if v}
    click.echo(
        f"{out}: {len(events)} events, ONTIME {events.gti.exposure:.1f} s in {len(events.gti)} GTI(s), "
        f"{len(events.gaps)} gap(s); {rep.ingest.n_passes} pass(es), "
        f"{rep.ingest.n_duplicate_frames} duplicated frame(s); dropped hits: {drop or 'none'}; "
        f"{rep.n_hits_outside_gti} hit(s) outside the GTI; {len(rep.hot_pixels)} hot pixel(s)"
    )
