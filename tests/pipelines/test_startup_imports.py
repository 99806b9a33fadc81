"""What ``mxt run`` loads before it computes: no heavy module it does not use.

``scipy.stats`` builds the docstrings of its ~100 distributions at import (a large
share of the CLI start-up); the pipeline needs only special functions, which
:mod:`scipy.special` provides.  Checked in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import mxt_pipeline.cli.main
import mxt_pipeline.pipelines.execute, mxt_pipeline.pipelines.xband_cp, mxt_pipeline.pipelines.xband_gp
import mxt_pipeline.pipelines.bricks.calibrate, mxt_pipeline.pipelines.bricks.detect
import mxt_pipeline.pipelines.bricks.lightcurves, mxt_pipeline.pipelines.bricks.burst, mxt_pipeline.pipelines.bricks.images
import mxt_pipeline.detect.pipeline, mxt_pipeline.lightcurve.extract, mxt_pipeline.calib.chain
print(",".join(m for m in ("scipy.stats", "scipy.signal", "dask", "distributed") if m in sys.modules))
"""


def test_pipeline_modules_do_not_load_scipy_stats_or_dask():
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(ROOT))], capture_output=True, text=True,
                         timeout=300, check=True)  # fmt: skip
    assert out.stdout.strip() == "", f"loaded at start-up: {out.stdout.strip()}"
