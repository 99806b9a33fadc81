"""The pipelines by name: ``xband-gp`` and ``xband-cp``.

Pipelines are built on demand (their bricks import the science modules), so importing
this module is cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.pipelines.pipeline import Pipeline

__all__ = ["PIPELINES", "get_pipeline", "pipeline_names"]

#: name -> "module:function" building the pipeline.
PIPELINES: dict[str, str] = {
    "xband-gp": "mxt_pipeline.pipelines.xband_gp:build_pipeline",
    "xband-cp": "mxt_pipeline.pipelines.xband_cp:build_pipeline",
}


def pipeline_names() -> list[str]:
    return sorted(PIPELINES)


def get_pipeline(name: str, *, telemetry: bool = False) -> Pipeline:
    """Build the pipeline registered as ``name``.

    Parameters
    ----------
    name : str
    telemetry : bool
        Its variant for telemetry inputs: the ``preprocess`` brick first.

    Raises
    ------
    MXTInputError
        For an unknown name (listing the known ones).
    """
    target = PIPELINES.get(name)
    if target is None:
        raise MXTInputError(f"unknown pipeline {name!r}; known: {pipeline_names()}", keyword="pipeline")
    module, _, func = target.partition(":")
    build: Callable[..., Pipeline] = getattr(importlib.import_module(module), func)
    return build(telemetry=True) if telemetry else build()
