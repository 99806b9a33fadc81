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

__all__ = ["MANIFEST_NAME", "read_manifest"]

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
    if not isinstance(files, dict) or not isinstance(files.get("l1"), list) or "att" not in files:
        raise MXTFormatError("'files' must hold an 'l1' list and 'att'", file=path, keyword="files")
    return manifest
