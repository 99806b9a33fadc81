"""The dataset manifest (``dataset.json``): which L1, attitude and angle files make an observation.

Layout and keys: ``docs/pipelines.md`` and ``docs/calibration.md``.  Read here, in the
I/O layer, so that the calibration package never opens a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mxt_pipeline.errors import MXTFormatError, MXTInputError

__all__ = ["MANIFEST_NAME", "read_manifest", "is_telemetry_manifest"]

#: File name of the manifest inside a dataset folder.
MANIFEST_NAME = "dataset.json"


def read_manifest(dataset_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``dataset.json`` of a dataset directory.

    Raises
    ------
    MXTInputError
        The file is missing.
    MXTFormatError
        It is not JSON or lacks a required key.
    """
    path = Path(dataset_dir) / MANIFEST_NAME
    if not path.is_file():
        raise MXTInputError("dataset manifest not found", file=path)
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise MXTFormatError(f"not valid JSON: {exc}", file=path) from None
    if not isinstance(manifest, dict):
        raise MXTFormatError("the manifest must be a JSON object", file=path)
    for key in ("obs_id", "files"):
        if key not in manifest:
            raise MXTFormatError(f"missing key {key!r}", file=path, keyword=key)
    files = manifest["files"]
    if not isinstance(files, dict):
        raise MXTFormatError("'files' must be a JSON object", file=path, keyword="files")
    telemetry = files.get("telemetry")
    if telemetry is not None and (not isinstance(telemetry, list)
                                  or not all(isinstance(t, str) and t for t in telemetry)):  # fmt: skip
        raise MXTFormatError("'files.telemetry' must be a list of pass folders", file=path, keyword="files.telemetry")
    if is_telemetry_manifest(manifest):
        return manifest  # a telemetry dataset: the L1 files and the ATT come from its packets
    if not isinstance(files.get("l1"), list) or "att" not in files:
        raise MXTFormatError("'files' must hold an 'l1' list and 'att' (or a 'telemetry' list of pass folders)",
                             file=path, keyword="files")  # fmt: skip
    return manifest


def is_telemetry_manifest(manifest: dict[str, Any]) -> bool:
    """Whether a manifest describes a *telemetry dataset*: pass folders listed, no L1 file.

    Such a dataset (``files.telemetry``: the pass folders of CCSDS packet files, no
    ``files.l1``, ``files.att`` null or absent) is run as preprocess -> XBAND-GP/CP.  A
    dataset listing both (``mxt simulate --telemetry``) is an L1 dataset unless the run
    asks for its telemetry (``mxt run --from-telemetry``).
    """
    files = manifest.get("files") or {}
    return bool(files.get("telemetry")) and not files.get("l1")
