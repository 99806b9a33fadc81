"""Golden dataset generation: the simulator writes the input, the bricks the expected outputs.

Used by ``python -m harness golden make NAME`` through
:meth:`harness.golden.GoldenStore.make_candidate`; the result is a *candidate*, which
becomes golden only when blessed.  The definition of a set (``golden.sets.NAME`` of the
configuration) names its scenario file (``harness/golden_scenarios/``), its seed, its
pipeline and, for XBAND-CP, the trigger position.

A set with a ``telemetry`` definition (downlink defect rates) is a *telemetry dataset*:
the simulated passes and attitude go through the downlink into CCSDS packet files
(``input/telemetry/pass_NN/``), and the L1 and ATT files are removed from the input, so
that the pipeline starts with the ``preprocess`` brick.

Generation is reproducible byte for byte where the code allows: the simulator is
seeded, the CALDB is the bundled one of the checkout (``$CALDB`` is ignored), and
``SOURCE_DATE_EPOCH`` fixes the DATE keyword of every product written meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from harness.config import repo_root
from harness.golden import GoldenError
from mxt_pipeline._version import __version__
from mxt_pipeline.io.dataset_manifest import MANIFEST_NAME, read_manifest
from mxt_pipeline.io.fits import atomic_write_bytes, source_date_epoch
from mxt_pipeline.io.simulated_dataset import load_scenario, run_scenario
from mxt_pipeline.io.telemetry_stream import write_telemetry
from mxt_pipeline.telemetry.downlink import DownlinkDefects

__all__ = ["generate_golden", "telemetry_dataset", "GOLDEN_DATE_EPOCH"]

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
        No scenario in the definition, or the CALDB is unavailable.
    """
    from harness import __version__ as harness_version
    from harness.replay import GoldenRun, generate_expected

    if "scenario" not in spec or "seed" not in spec:
        raise GoldenError(f"golden set {name!r}: the definition needs 'scenario' and 'seed'")
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
        if run.telemetry is not None:
            telemetry_dataset(folder / "input", ds.passes, ds.attitude, run.telemetry, int(spec["seed"]))
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


def telemetry_dataset(root: Path, passes: Any, attitude: Any, defects: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Turn the simulated L1 dataset ``root`` into a telemetry dataset (in place).

    The passes and the attitude go through a downlink with ``defects`` (the fields of
    :class:`~mxt_pipeline.telemetry.downlink.DownlinkDefects`, and ``seed``: the
    downlink's seed, default ``seed``) into ``root/telemetry/``; the L1 files and the ATT
    file are removed and ``dataset.json`` lists the pass folders in ``files.telemetry``.

    Returns
    -------
    dict
        The telemetry index (``telemetry/telemetry.json``): passes, defects, what was injected.

    Raises
    ------
    GoldenError
        An unknown defect name.
    """
    known = {f.name for f in fields(DownlinkDefects)}
    unknown = sorted(set(defects) - known - {"seed"})
    if unknown:
        raise GoldenError(f"telemetry: unknown downlink defect(s) {unknown}; known: {sorted(known)}")
    doc = write_telemetry(passes, attitude, root, defects=DownlinkDefects(**{k: v for k, v in defects.items() if k in known}),
                          seed=int(defects.get("seed", seed)))  # fmt: skip
    manifest = read_manifest(root)
    files = manifest["files"]
    for rel in [*files.get("l1", []), files.get("att")]:
        if rel:
            (root / rel).unlink(missing_ok=True)
    l1_dir = root / "l1"
    if l1_dir.is_dir() and not any(l1_dir.iterdir()):
        l1_dir.rmdir()
    manifest["files"] = {"telemetry": [f"telemetry/{p}" for p in doc["passes"]],
                         **{k: v for k, v in files.items() if k not in ("l1", "att")}}  # fmt: skip
    atomic_write_bytes(root / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
    return doc
