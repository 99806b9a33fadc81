"""Simulated datasets on disk: scenario files in, L1 dataset folders out (the I/O layer).

The simulator itself (:mod:`mxt_pipeline.simulate`) works in memory: a
:class:`~mxt_pipeline.simulate.scenario.Scenario`, a seed and the calibration models in,
a :class:`~mxt_pipeline.simulate.bench.SimulatedDataset` out.  Here the scenario YAML is
read and written, the CALDB is looked up (:mod:`mxt_pipeline.caldb.simulator`) and the
dataset folder is written, every file atomically (layout in ``docs/simulation.md``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mxt_pipeline.caldb.simulator import load_simulator_calibration
from mxt_pipeline.errors import MXTFormatError, MXTInputError
from mxt_pipeline.io.fits import atomic_write_bytes
from mxt_pipeline.io.products import write_angles, write_attitude, write_raw_hits, write_saa
from mxt_pipeline.io.truth import write_truth
from mxt_pipeline.simulate.bench import SimulatedDataset, scenario_manifest, simulate
from mxt_pipeline.simulate.scenario import Scenario, dump_scenario, scenario_from_dict

__all__ = ["load_scenario", "scenario_document", "write_scenario", "write_dataset", "run_scenario"]


def load_scenario(path: str | os.PathLike[str], *, data_dir: str | os.PathLike[str] | None = None) -> Scenario:
    """Read a YAML scenario file.

    Raises
    ------
    MXTFormatError
        The file is missing or not valid YAML.
    MXTInputError
        The content is not a valid scenario (names the key).
    """
    p = Path(path)
    doc, _ = _read_scenario(p)
    return _checked_scenario(doc, p, data_dir)


def scenario_document(path: str | os.PathLike[str], *, data_dir: str | os.PathLike[str] | None = None
                      ) -> tuple[dict[str, Any], str]:  # fmt: skip
    """The content of a scenario file as parsed (checked to be a valid scenario) and its SHA-256.

    What a campaign keeps of a user's scenario: the document itself, so that its runs
    do not depend on the file afterwards, and the digest of the bytes read.

    Raises
    ------
    MXTFormatError, MXTInputError
        As :func:`load_scenario`.
    """
    p = Path(path)
    doc, raw = _read_scenario(p)
    _checked_scenario(doc, p, data_dir)
    return doc, hashlib.sha256(raw).hexdigest()


def _read_scenario(p: Path) -> tuple[Any, bytes]:
    """The parsed YAML document of a scenario file and the bytes read."""
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise MXTFormatError("scenario file not found", file=p) from None
    except OSError as exc:
        raise MXTFormatError(f"not a valid YAML file: {exc}", file=p) from None
    try:
        return yaml.safe_load(raw.decode("utf-8")), raw
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MXTFormatError(f"not a valid YAML file: {exc}", file=p) from None


def _checked_scenario(doc: Any, p: Path, data_dir: str | os.PathLike[str] | None) -> Scenario:
    try:
        return scenario_from_dict(doc, data_dir=data_dir)
    except MXTInputError as exc:
        raise MXTInputError(exc.message, file=p, keyword=exc.keyword) from None


def write_scenario(scenario: Scenario, path: str | os.PathLike[str]) -> Path:
    """Write the scenario as YAML (atomically); returns the path."""
    return atomic_write_bytes(path, dump_scenario(scenario).encode("utf-8"))


def write_dataset(ds: SimulatedDataset, out: str | os.PathLike[str]) -> Path:
    """Write a simulated dataset directory (every file atomically); returns its path."""
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    sc = ds.scenario
    files: dict[str, Any] = {"l1": [], "att": None, "ang": None, "saa": []}
    for p in sorted(ds.passes, key=lambda h: h.meta["PASS_ID"]):
        rel = f"l1/mxt_l1_raw_{sc.obs_id}_p{int(p.meta['PASS_ID']):02d}.fits"
        write_raw_hits(root / rel, p)
        files["l1"].append(rel)
    files["att"] = f"aux/mxt_att_{sc.obs_id}.fits"
    write_attitude(root / files["att"], ds.attitude)
    files["ang"] = f"aux/mxt_ang_{sc.obs_id}.fits"
    write_angles(root / files["ang"], ds.angles)
    for week, tab in sorted(ds.saa.items()):
        rel = f"saa/mxt_saa_w{week}.fits"
        write_saa(root / rel, tab, week)
        files["saa"].append(rel)
    truth = dict(ds.truth)
    truth["files"] = files
    write_truth(root / "truth.json", truth)
    write_scenario(sc, root / "scenario.yaml")
    manifest = {**scenario_manifest(sc), "files": files}
    atomic_write_bytes(root / "dataset.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return root


def run_scenario(
    scenario: Scenario,
    seed: int,
    out: str | os.PathLike[str],
    *,
    caldb: str | os.PathLike[str] | None = None,
    calset: Any = None,
    progress: Callable[[str], None] | None = None,
) -> SimulatedDataset:
    """Load the CALDB (unless ``calset`` is given), simulate and write the dataset.

    The calibration is the set valid at the scenario's start (or at ``caldb.date`` of
    the scenario), from ``caldb`` (a CALDB root), else the scenario's ``caldb.path``,
    else ``$CALDB`` or the bundled CALDB.
    """
    info: dict[str, Any] = {}
    if calset is None:
        root = caldb if caldb is not None else scenario.caldb.get("path")
        calset, info = load_simulator_calibration(root, met=scenario.tstart, date=scenario.caldb.get("date"))
    else:
        info = {"root": None, "date": "", "files": getattr(calset, "files", {}) or {}}
    ds = simulate(scenario, seed, calset, caldb_info=info, progress=progress)
    if progress:
        progress("writing")
    write_dataset(ds, out)
    return ds
