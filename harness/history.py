"""What the coverage and timing trends share: the history CSV files and their plots.

Each regression run appends rows (one per package or brick) keyed by ``date`` and
``commit``; a trend plot has one x position per run, labelled by its commit.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from mxt_pipeline.io import atomic_write_bytes

__all__ = ["read_history", "trend_axes", "save_trend"]


def read_history(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows of a history CSV (empty when the file does not exist)."""
    p = Path(path)
    if not p.exists():
        return []
    with open(p, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def trend_axes(history: list[dict[str, str]]):
    """A figure for a trend and the x position of each run (``(date, commit)`` -> index).

    Returns
    -------
    fig, ax, runs, index
        ``runs`` lists the ``(date, commit)`` keys in the order of the history.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs: list[tuple[str, str]] = []
    for r in history:
        key = (r["date"], r["commit"])
        if key not in runs:
            runs.append(key)
    # A figure on its own Agg canvas: no pyplot state, no global backend.
    fig = Figure(figsize=(7, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    return fig, ax, runs, {k: i for i, k in enumerate(runs)}


def save_trend(fig, ax, runs: list[tuple[str, str]], path: str | os.PathLike[str], ylabel: str,
               **legend: Any) -> Path:  # fmt: skip
    """Label the runs by commit (at most 10 ticks), finish the figure and write it atomically."""
    ax.set_xlabel("regression run")
    ax.set_ylabel(ylabel)
    ticks = list(range(len(runs)))
    step = max(1, len(ticks) // 10)
    ax.set_xticks(ticks[::step])
    ax.set_xticklabels([runs[i][1][:8] for i in ticks[::step]], rotation=30, fontsize=7)
    ax.legend(**legend)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())
