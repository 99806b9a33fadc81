"""Run XBAND-GP on a dataset in a separate process; ``--kill-in BRICK`` kills it (SIGKILL) there.

Usage: ``python -m tests.pipelines.run_xband DATASET OUT [--kill-in BRICK]``.  The
calibration set is :class:`SimpleFullCalibrationSet`.  Exits with the run's status code.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys

from mxt_pipeline.pipelines.execute import execute
from mxt_pipeline.pipelines.runtime import request_from_dataset
from mxt_pipeline.pipelines.xband_gp import build_pipeline

from .xband_data import SimpleFullCalibrationSet


def main(argv: list[str]) -> int:
    dataset, out = argv[0], argv[1]
    pipeline = build_pipeline()
    if "--kill-in" in argv:
        victim = argv[argv.index("--kill-in") + 1]

        def die(inputs, params, cal):
            os.kill(os.getpid(), signal.SIGKILL)

        pipeline.bricks = [dataclasses.replace(b, core=die) if b.name == victim else b for b in pipeline.bricks]
    req = request_from_dataset(dataset, "xband-gp", out, caldb=SimpleFullCalibrationSet())
    return execute(req, pipeline=pipeline, handle_signals=True).exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
