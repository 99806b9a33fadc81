"""Golden dataset generation: the simulator writes the input, the bricks the expected outputs.

Used by ``python -m harness golden make NAME`` through
:meth:`harness.golden.GoldenStore.make_candidate`; the result is a *candidate*, which
becomes golden only when blessed.  The definition of a set (``golden.sets.NAME`` of the
configuration) names its scenario file (``harness/golden_scenarios/``), its seed, its
pipeline and, for XBAND-CP, the trigger position.

Generation is reproducible byte for byte where the code allows: the simulator is
seeded, the CALDB is the bundled one of the checkout (``$CALDB`` is ignored), and
``SOURCE_DATE_EPOCH`` fixes the DATE keyword of every product written meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.config import repo_root
from harness.golden import GoldenError
from mxt_pipeline.io.fits import source_date_epoch

__all__ = ["generate_golden", "GOLDEN_DATE_EPOCH"]

#: DATE of every golden product (2025-01-01T00:00:00 UTC): golden data do not depend on
#: when they were made.
GOLDEN_DATE_EPOCH = "1735689600"


def generate_golden(name: str, spec: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """Simulate the dataset ``name`` into ``folder/input`` and write ``folder/expected``.

    Returns
    -------
    dict
        What the manifest records: scenario file, seed, versions, CALDB, brick statuses.

    Raises
    ------
    GoldenError
        No scenario in the definition, or the simulator or the CALDB is unavailable.
    """
    from harness import __version__ as harness_version
    from harness.replay import GoldenRun, generate_expected
    from mxt_pipeline._version import __version__

    if "scenario" not in spec or "seed" not in spec:
        raise GoldenError(f"golden set {name!r}: the definition needs 'scenario' and 'seed'")
    try:
        from mxt_pipeline.io.simulated_dataset import load_scenario, run_scenario
    except ImportError as exc:
        raise GoldenError(f"the simulation bench is not available: {exc}") from None
    scenario_path = Path(spec["scenario"])
    if not scenario_path.is_absolute():
        scenario_path = Path(__file__).resolve().parent / scenario_path
    run = GoldenRun.from_definition(spec)
    caldb = run.caldb_root()
    if not caldb.is_dir() or not any(caldb.iterdir()):
        raise GoldenError(f"the CALDB {caldb} is empty: golden data need the bundled calibration")
    scenario = load_scenario(scenario_path)
    with source_date_epoch(GOLDEN_DATE_EPOCH):
        ds = run_scenario(scenario, int(spec["seed"]), folder / "input", caldb=caldb)
        statuses = generate_expected(folder / "input", run, folder / "expected")
    try:
        scenario_rel = scenario_path.relative_to(repo_root()).as_posix()
    except ValueError:
        scenario_rel = str(scenario_path)
    return {
        "scenario_file": scenario_rel,
        "seed": int(spec["seed"]),
        "versions": {"mxt_pipeline": __version__, "harness": harness_version},
        "caldb": {"root": "fixtures_caldb" if run.caldb is None else run.caldb,
                  "files": dict((ds.truth.get("caldb") or {}).get("files") or {})},  # fmt: skip
        "statuses": statuses,
        "n_hits": int(getattr(ds, "n_hits", 0)),
    }
