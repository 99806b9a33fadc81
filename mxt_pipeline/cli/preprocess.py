"""``mxt preprocess PASS_DIR... --out DATASET``: telemetry packets of the passes to an L1 dataset.

Decodes the packet files of each pass folder (``docs/formats.md``, "Telemetry packets"),
removes duplicates across passes, orders by time, checks every CRC and writes the L1
raw files, the ATT file, ``dataset.json`` and the defect report ``preprocess_report.json``.
"""

from __future__ import annotations

import click


@click.command("preprocess")
@click.argument("pass_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="L1 dataset folder to write.")
@click.option("--aux", "aux", default=None, type=click.Path(exists=True, file_okay=False),
              help="Dataset folder whose manifest keys (pointing, span), angle file and saa/ are taken over.")
def command(pass_dirs: tuple[str, ...], out: str, aux: str | None) -> None:
    """Decode the telemetry of PASS_DIR... into the L1 dataset OUT (dataset.json, l1/, aux/)."""
    from pathlib import Path

    from mxt_pipeline.errors import MXTInputError
    from mxt_pipeline.io.telemetry_stream import REPORT_NAME, preprocess_passes

    o = Path(out).resolve()
    if any(o == Path(d).resolve() or Path(d).resolve() in o.parents for d in pass_dirs):
        raise MXTInputError("the output folder must not be, or lie inside, a pass folder", file=out)
    r = preprocess_passes(list(pass_dirs), out, aux=aux).report
    click.echo(f"{out}: {r.n_dumps} pass(es), {r.n_hits} hits, {r.n_attitude_samples} attitude samples from "
               f"{r.packets_read} packets read: {r.kept} kept, {r.duplicated} duplicated, {r.corrupted} corrupted, "
               f"{r.missing} missing, {r.reordered} reordered; {r.lost_time_s:.1f} s lost "
               f"(report: {Path(out) / REPORT_NAME})")  # fmt: skip
