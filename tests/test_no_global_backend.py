"""Library modules draw on their own Agg canvas: none of them switches matplotlib's global backend.

``matplotlib.use`` changes process-wide state (and fails once pyplot has a GUI backend);
a pipeline running inside a notebook or a worker must not have its backend switched.
The check runs in a fresh interpreter whose backend is set first to a sentinel value.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_campaign_plots_and_reports_keep_the_global_backend(tmp_path):
    code = textwrap.dedent(f"""
        import matplotlib
        matplotlib.use("svg")
        import numpy as np
        from mxt_pipeline.campaign.ensemble_report import BinStats, _plot_efficiency, _plot_offsets
        from harness.history import save_trend, trend_axes

        b = BinStats(lo=0.0, hi=100.0, n_true=10, n_found=8, median_offset=20.0, p90_offset=40.0,
                     r90_coverage=0.9, coverage_lo=0.7, coverage_hi=0.97, median_value=50.0,
                     median_counts=50.0)
        assert _plot_offsets([b], "counts", None) and _plot_efficiency([b])
        fig, ax, runs, index = trend_axes([{{"date": "2026-01-01", "commit": "abcdef12"}}])
        ax.plot([0], [1.0], label="x")
        save_trend(fig, ax, runs, {str(tmp_path / "t.png")!r}, "y")
        import sys
        assert "matplotlib.pyplot" not in sys.modules, "pyplot imported"
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
