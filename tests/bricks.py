"""Run the pipeline's bricks on test data, as ``mxt calibrate`` / ``mxt run`` do.

The tests calibrate datasets through the ``calibrate`` brick (the one way a task runs),
with a calibration set in memory standing in for the CALDB where a test needs its own
models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mxt_pipeline.io.products import read_events
from mxt_pipeline.pipelines.brick import BrickResult
from mxt_pipeline.pipelines.bricks.calibrate import CALIBRATE


def calibrate_dataset_dir(dataset: str | Path, calset: Any, out_dir: str | Path, **params: Any
                          ) -> tuple[Any, dict[str, Any], Path, BrickResult]:  # fmt: skip
    """Calibrate a dataset folder with the ``calibrate`` brick.

    Returns the L2 events read back from the written file, the calibration report (as
    written), the L2 path and the brick's result.
    """
    result = CALIBRATE.run_standalone({"observation": str(dataset)}, params, out_dir, caldb=calset)
    (l2,) = [Path(out_dir) / r.path for r in result.outputs if r.port == "events"]
    return read_events(l2), result.values["calibration_report"], l2, result
