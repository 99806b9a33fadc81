"""Run the toy pipeline in a separate process (the crash and signal tests kill it).

Usage: ``python -m tests.pipelines.run_toy OBS_DIR OUT_DIR CALDB_DIR [--kill-while-writing]``.
Exits with the run's status code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mxt_pipeline.pipelines.execute import execute

from .toybricks import build_toy, gain_loader, make_request, observation_from


def main(argv: list[str]) -> int:
    obs_dir, out_dir, caldb_dir = (Path(a) for a in argv[:3])
    from mxt_pipeline.pipelines.caldb_bundle import FileProvider

    caldb = FileProvider({"GAIN": caldb_dir / "gain.json"}, loader=gain_loader)
    toy = build_toy(kill_while_writing="--kill-while-writing" in argv)
    outcome = execute(make_request(observation_from(obs_dir), out_dir, caldb), pipeline=toy, handle_signals=True)
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
