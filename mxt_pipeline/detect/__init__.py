"""Source detection: two stages, Cash-statistic maximum likelihood, errors, source list.

Public entry points (see docs/detection.md):

* :func:`~mxt_pipeline.detect.pipeline.detect_sources` ``(events, calset, bands, params)``
  -> astropy Table: the pure task, which the ``detect`` brick runs (``mxt detect``,
  ``mxt run``) with the validated configuration of the CALDB;
* :func:`~mxt_pipeline.detect.pipeline.detect_in_problem`: both stages and the errors
  on band images already binned (simulations, benchmarks).

Submodules are imported on demand.
"""

__all__ = ["detect_sources", "detect_in_problem", "DetectionParameters"]


def __getattr__(name: str):
    if name in __all__:
        from mxt_pipeline.detect import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'mxt_pipeline.detect' has no attribute {name!r}")
