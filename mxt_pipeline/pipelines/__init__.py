"""Pipelines made of bricks, the scheduler contract, processing status, collections.

* :class:`~mxt_pipeline.pipelines.brick.Brick`: a task with declared inputs, outputs,
  parameters and CALDB code names, a pure core and a thin I/O shell; runnable alone.
* :class:`~mxt_pipeline.pipelines.pipeline.Pipeline`: an ordered list of bricks.
* :mod:`~mxt_pipeline.pipelines.runtime`: ``runtime_data.json`` (the ``{target}``, the
  inputs, the output folder, the one token) -> :class:`RunRequest`.
* :mod:`~mxt_pipeline.pipelines.status`: the ``{processing_status}`` values and exit codes.
* :mod:`~mxt_pipeline.pipelines.collection`: versioned output collections, staging,
  resumable journal, atomic publication, manifest.
* :func:`~mxt_pipeline.pipelines.execute.execute`: one run, end to end.
* :mod:`~mxt_pipeline.pipelines.reprocess`: rerun a collection with a newer CALDB or
  pipeline version into a new collection.
* ``xband-gp`` and ``xband-cp``: :mod:`~mxt_pipeline.pipelines.registry`.

See docs/pipelines.md.
"""

from mxt_pipeline.pipelines.brick import Brick, BrickResult, BrickStatus, CoreResult
from mxt_pipeline.pipelines.caldb_bundle import CalibrationBundle, caldb_version, provider_from
from mxt_pipeline.pipelines.context import RunContext
from mxt_pipeline.pipelines.parameters import Parameter, ParameterSet
from mxt_pipeline.pipelines.pipeline import Pipeline, PipelineResult
from mxt_pipeline.pipelines.ports import Codec, FileRecord, Port
from mxt_pipeline.pipelines.status import EXIT_CODES, ProcessingStatus

__all__ = [
    "Brick",
    "BrickResult",
    "BrickStatus",
    "CoreResult",
    "CalibrationBundle",
    "caldb_version",
    "provider_from",
    "RunContext",
    "Parameter",
    "ParameterSet",
    "Pipeline",
    "PipelineResult",
    "Codec",
    "FileRecord",
    "Port",
    "EXIT_CODES",
    "ProcessingStatus",
]
