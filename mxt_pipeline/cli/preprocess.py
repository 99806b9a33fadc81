"""``mxt preprocess PASS_DIR... --out DATASET``: the ``preprocess`` brick, run alone, into an L1 dataset.

Decodes the packet files of each pass folder (``docs/formats.md``, "Telemetry packets"),
removes duplicates across passes, orders by time, checks every CRC and writes the L1
raw files (``l1/``), the ATT file (``aux/``), the defect report ``preprocess_report.json``
and ``dataset.json`` (with ``--aux DATASET``: its pointing, span, angle and SAA files).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from mxt_pipeline.errors import MXTInputError


def preprocess_to_dataset(pass_dirs: Sequence[str | Path], out: str | Path, aux: str | Path | None) -> dict[str, Any]:
    """Run the ``preprocess`` brick on the pass folders into the dataset ``out``; returns its report."""
    import json

    # lazy: mxt --help imports every command module (cli/main.py); these load astropy, pandera, spacepackets (~1000 modules)
    from mxt_pipeline.io.telemetry_stream import (
        REPORT_NAME,
        find_packet_files,
        write_preprocessed_manifest,
    )
    from mxt_pipeline.pipelines.bricks.preprocess import PREPROCESS
    from mxt_pipeline.pipelines.standalone import Placement, run_brick_to

    o = Path(out).resolve()
    if any(o == Path(d).resolve() or Path(d).resolve() in o.parents for d in pass_dirs):
        raise MXTInputError("the output folder must not be, or lie inside, a pass folder", file=out)
    files = [f for d in pass_dirs for f in find_packet_files(d)]
    root = Path(out)
    placements = {"l1_passes": Placement(root / "l1", folder=True), "attitude": Placement(root / "aux", folder=True),
                  "telemetry_report": Placement(root / REPORT_NAME)}  # fmt: skip
    result, kept = run_brick_to(PREPROCESS, {"telemetry": files}, {}, placements)
    passes = result.values["l1_passes"]
    first = passes[sorted(passes)[0]]
    write_preprocessed_manifest(root, obs_id=str(first.meta["OBS_ID"]), object_name=first.meta.get("OBJECT"),
                                l1=[f"l1/{p.name}" for p in kept["l1_passes"]],
                                att=f"aux/{kept['attitude'][0].name}", aux=aux)  # fmt: skip
    return json.loads((root / REPORT_NAME).read_text())


@click.command("preprocess")
@click.argument("pass_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="L1 dataset folder to write.")
@click.option("--aux", "aux", default=None, type=click.Path(exists=True, file_okay=False),
              help="Dataset folder whose manifest keys (pointing, span), angle file and saa/ are taken over.")
def command(pass_dirs: tuple[str, ...], out: str, aux: str | None) -> None:
    """Decode the telemetry of PASS_DIR... into the L1 dataset OUT (dataset.json, l1/, aux/)."""
    # lazy: mxt --help imports every command module (cli/main.py); telemetry_stream loads ~1000 modules
    from mxt_pipeline.io.telemetry_stream import REPORT_NAME

    r = preprocess_to_dataset(list(pass_dirs), out, aux)
    click.echo(f"{out}: {r['n_dumps']} pass(es), {r['n_hits']} hits, {r['n_attitude_samples']} attitude samples from "
               f"{r['packets_read']} packets read: {r['kept']} kept, {r['duplicated']} duplicated, "
               f"{r['corrupted']} corrupted, {r['missing']} missing, {r['reordered']} reordered; "
               f"{r['lost_time_s']:.1f} s lost (report: {Path(out) / REPORT_NAME})")  # fmt: skip
