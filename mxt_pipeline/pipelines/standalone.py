"""One brick run alone, its products placed where a person asked for them.

``mxt calibrate``, ``mxt detect`` and ``mxt lightcurve`` are single bricks run
standalone: the same declared parameters and defaults, the same CALDB code names and
the same core as in ``mxt run``, so a product made by hand is the product the pipeline
makes.  :func:`run_brick_to` runs the brick into a hidden staging folder beside the
destination (same file system), then moves each product to the file or folder the
caller named with :func:`os.replace`, so a destination holds either its previous
content or the complete new product, never a partial one, and nothing is left behind
when the brick fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mxt_pipeline.caldb.select import met_to_datetime
from mxt_pipeline.errors import MXTInputError, MXTPipelineError
from mxt_pipeline.io import read_header
from mxt_pipeline.pipelines.brick import Brick, BrickResult
from mxt_pipeline.services.files import move_into_place

__all__ = ["Placement", "run_brick_to", "date_of_inputs"]


@dataclass(frozen=True)
class Placement:
    """Where the files of one output port go.

    Attributes
    ----------
    path : Path, optional
        The file (a single-file port) or the folder (a many port, or ``folder=True``).
        None: the port's files are not kept.
    folder : bool
        ``path`` is a folder receiving the files under their product names.
    """

    path: Path | None
    folder: bool = False


def date_of_inputs(inputs: Mapping[str, Any]) -> datetime | None:
    """Date of the CALDB selection for a standalone run: when the data were taken.

    The ``tstart`` of a dataset manifest (``observation`` input), else the ``TSTART``
    keyword of the first FITS input file that has one.
    """
    obs = inputs.get("observation")
    if obs is not None:
        manifest = getattr(obs, "manifest", None)
        if manifest is None:
            # lazy: runtime loads jsonschema (~40 modules), which mxt detect does not load otherwise
            from mxt_pipeline.pipelines.runtime import ObservationInputs

            manifest = ObservationInputs.from_dataset(obs).manifest
        if manifest.get("tstart") is not None:
            return met_to_datetime(float(manifest["tstart"]))
    for value in inputs.values():
        if isinstance(value, (str, os.PathLike)) and str(value).lower().endswith((".fits", ".fits.gz", ".evt")):
            try:
                header = read_header(value)
            except MXTInputError:
                continue
            if header.get("TSTART") is not None:
                try:
                    return met_to_datetime(float(header["TSTART"]))
                except (TypeError, ValueError):
                    raise MXTInputError("TSTART is not a number", file=value, keyword="TSTART") from None
    return None


def run_brick_to(
    brick: Brick,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    placements: Mapping[str, Placement],
    *,
    caldb: Any = None,
    target: Any = None,
    services: Mapping[str, Any] | None = None,
    date: datetime | None = None,
) -> tuple[BrickResult, dict[str, list[Path]]]:
    """Run ``brick`` standalone and move its products to their placements.

    Parameters
    ----------
    brick : Brick
    inputs : mapping
        By input port: paths or in-memory values (:meth:`Brick.run_standalone`).
    params : mapping
        Parameter values (validated by the brick).
    placements : mapping
        By output port: where its files go.  A port without a placement is not kept.
    caldb, target, services
        As in :meth:`Brick.run_standalone`.
    date : datetime, optional
        Date of the CALDB selection; default :func:`date_of_inputs`.

    Returns
    -------
    BrickResult, dict
        The brick's result and the final paths of the files kept, by port.

    Raises
    ------
    MXTError
        The brick failed (its error, naming the file, HDU, column or keyword).
    """
    destinations = [p.path for p in placements.values() if p.path is not None]
    if not destinations:
        raise MXTPipelineError(f"brick {brick.name}: no output placed")
    anchor = destinations[0] if placements[next(iter(placements))].folder else destinations[0].parent
    anchor = Path(anchor)
    try:
        anchor.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MXTInputError(f"cannot create the output folder: {exc.strerror}", file=anchor) from None
    when = date if date is not None else date_of_inputs(inputs)
    staging = Path(tempfile.mkdtemp(prefix=f".mxt-{brick.name}-", dir=anchor))
    try:
        result = brick.run_standalone(inputs, params, staging, caldb=caldb, target=target, services=services,
                                      date=when)  # fmt: skip
        kept: dict[str, list[Path]] = {}
        by_port: dict[str, list] = {}
        for rec in result.outputs:
            by_port.setdefault(rec.port, []).append(rec)
        for port, recs in by_port.items():
            place = placements.get(port)
            if place is None or place.path is None:
                continue
            if place.folder:
                Path(place.path).mkdir(parents=True, exist_ok=True)
                targets = [Path(place.path) / Path(r.path).name for r in recs]
            else:
                if len(recs) != 1:
                    raise MXTPipelineError(f"brick {brick.name}: output {port!r} has {len(recs)} files, not one")
                targets = [Path(place.path)]
            for rec, dest in zip(recs, targets, strict=True):
                dest.parent.mkdir(parents=True, exist_ok=True)
                move_into_place(staging / rec.path, dest)
            kept[port] = targets
        return result, kept
    finally:
        shutil.rmtree(staging, ignore_errors=True)
