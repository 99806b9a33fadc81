"""Reprocessing: rerun the inputs of a published collection with a newer CALDB or pipeline.

The manifest of a collection records the request that made it (target, inputs,
parameter overrides, services, but never the token).  :func:`reprocess` rebuilds that
request, points it at the CALDB to use now, and runs it through
:func:`~mxt_pipeline.pipelines.execute.execute` into the *same* output folder:

* a newer CALDB file or pipeline version changes the run key and the collection
  name (``c<CALDB version>_p<pipeline version>``), so a new collection ``v<N+1>`` is
  published beside the old one, which is never touched;
* reprocessing again with nothing changed is recognised as already done;
* inputs whose checksums changed since the collection was made (a pass delivered
  since) are processed as they are now, and the outcome lists them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.pipelines.collection import MANIFEST
from mxt_pipeline.pipelines.execute import RunOutcome, execute
from mxt_pipeline.pipelines.pipeline import Pipeline
from mxt_pipeline.pipelines.runtime import ObservationInputs, RunRequest, Target
from mxt_pipeline.services.files import sha256_file
from mxt_pipeline.services.tokens import Secret

__all__ = ["read_manifest", "request_from_collection", "changed_inputs", "reprocess"]


def read_manifest(collection_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a published collection (MXTInputError when there is none)."""
    path = Path(collection_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MXTInputError("not a published collection: no manifest", file=path) from None
    except ValueError as exc:
        raise MXTInputError(f"manifest is not valid JSON: {exc}", file=path) from None


def request_from_collection(
    collection_dir: str | os.PathLike[str],
    *,
    caldb: Any = None,
    caldb_url: str | None = None,
    token: str | Secret | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    force: bool = False,
    progress: bool = False,
) -> RunRequest:
    """The request that made a collection, with a new CALDB and the current pipeline.

    Parameters
    ----------
    collection_dir : path-like
        A published collection.
    caldb, caldb_url : optional
        The calibration to use now (default: the defaults of CaDBIO).
    token : str or Secret, optional
        The token (never stored in a manifest).
    output_dir : path-like, optional
        Where the new collection goes (default: beside the old one).
    parameters : mapping, optional
        Replaces the parameter overrides of the original request.
    """
    man = read_manifest(collection_dir)
    req = man.get("request") or {}
    try:
        target = Target.from_dict(man["target"])
        inputs_doc = req["inputs"]
        pipeline = man["pipeline"]
    except KeyError as exc:
        raise MXTInputError(f"manifest lacks {exc.args[0]!r}", file=Path(collection_dir) / MANIFEST) from None
    if not isinstance(inputs_doc, Mapping):
        raise MXTInputError("manifest 'request.inputs' is not a mapping", file=Path(collection_dir) / MANIFEST)
    if inputs_doc.get("dataset"):
        # A run on the dataset's telemetry is reprocessed from the telemetry again.
        inputs = ObservationInputs.from_dataset(inputs_doc["dataset"], telemetry=True if inputs_doc.get("telemetry") else None)
    elif "att" not in inputs_doc:
        # An input set names either a dataset folder or its files, the ATT among them.
        raise MXTInputError(
            "manifest 'request.inputs' names neither a 'dataset' nor an 'att' file",
            file=Path(collection_dir) / MANIFEST,
        )
    else:
        l1 = list(inputs_doc.get("l1", [])) + list(inputs_doc.get("missing_l1", []))
        inputs = ObservationInputs.from_files(
            l1, inputs_doc["att"], inputs_doc.get("ang"), inputs_doc.get("saa_dir"),
            obs_id=target.obs_id, object_name=target.object, trigger_time=target.trigger_time,
            tstart=inputs_doc.get("tstart"), tstop=inputs_doc.get("tstop"),
        )  # fmt: skip
    services = req.get("services", {})
    if isinstance(token, str):
        token = Secret(token) if token.strip() else None
    return RunRequest(
        pipeline=pipeline,
        target=target,
        inputs=inputs,
        output_dir=Path(output_dir) if output_dir is not None else Path(collection_dir).resolve().parent,
        token=token,
        caldb_url=caldb_url,
        sdb_url=services.get("sdb_url"),
        max_tries=int(services.get("max_tries", 5)),
        caldb=caldb,
        # Inputs without an ATT file: the same attitude service as the first run.
        attitude_url=services.get("attitude_url"),
        parameters={k: dict(v) for k, v in (parameters if parameters is not None else req.get("parameters", {})).items()},
        force=force,
        progress=progress,
    )


def changed_inputs(collection_dir: str | os.PathLike[str]) -> list[str]:
    """Input files of a collection that are gone or whose checksum changed since."""
    man = read_manifest(collection_dir)
    out = []
    for rec in man.get("inputs", []):
        p = Path(rec["path"])
        if not p.is_file():
            out.append(f"gone: {p}")
        elif sha256_file(p) != rec["sha256"]:
            out.append(f"changed: {p}")
    return out


def reprocess(
    collection_dir: str | os.PathLike[str],
    *,
    pipeline: Pipeline | None = None,
    handle_signals: bool = False,
    **kwargs: Any,
) -> RunOutcome:
    """Rerun a collection's inputs into a new collection (see the module docstring).

    Keyword arguments are those of :func:`request_from_collection`.  The outcome's
    ``extra["changed_inputs"]`` lists inputs that changed since the collection was made.
    """
    changed = changed_inputs(collection_dir)
    request = request_from_collection(collection_dir, **kwargs)
    outcome = execute(request, pipeline=pipeline, handle_signals=handle_signals)
    outcome.extra["changed_inputs"] = changed
    outcome.extra["reprocessed_from"] = Path(collection_dir).name
    return outcome
