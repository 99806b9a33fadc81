"""Replay: each brick alone on its golden input, and each pipeline end to end.

A golden dataset (see :mod:`harness.golden`) holds the L1 input (``input/``) and, for
every brick of its pipeline, what the brick wrote when it ran *alone* on its golden
input (``expected/<brick>/`` with ``OUTPUTS.json``, the files of each output port), and
what the whole pipeline wrote (``expected/pipeline/``).

A telemetry golden dataset (definition key ``telemetry``) holds the packet files of the
passes instead of the L1 files: its pipeline starts with ``preprocess``, whose golden
outputs (L1 passes, ATT, defect report) are the inputs of ``calibrate``'s replay.

* :func:`replay_brick` runs one brick with
  :meth:`~mxt_pipeline.pipelines.brick.Brick.run_standalone`: its ``observation`` is the
  golden dataset, the L1/ATT/ANG files come from it, ``target`` is built from the
  dataset and the golden run definition, and every other input is the golden output of
  the upstream brick that produces it.  Its outputs are compared with
  ``expected/<brick>/``.
* :func:`replay_pipeline` runs the pipeline with
  :func:`~mxt_pipeline.pipelines.execute.run_dataset` and compares every product with
  ``expected/pipeline/``.
* :func:`generate_expected` writes both expected folders (used by ``golden make``).

Everything runs in this process, so a test can monkeypatch a science function and
watch the harness fail (``harness/tests/test_broken_variants.py``).  The comparison
uses the tolerances of the configuration; PNG previews are checked to be PNG files
(their pixels depend on the matplotlib version) and compared by nothing else.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import HarnessConfig, repo_root
from harness.filediff import compare_files
from harness.fitsdiff import Difference, FileDiff
from harness.results import CheckResult, Status
from mxt_pipeline.caldb.select import met_to_datetime
from mxt_pipeline.pipelines.caldb_bundle import provider_from
from mxt_pipeline.pipelines.execute import run_dataset
from mxt_pipeline.pipelines.ports import write_json
from mxt_pipeline.pipelines.registry import get_pipeline
from mxt_pipeline.pipelines.runtime import BurstPosition, ObservationInputs, request_from_dataset

__all__ = [
    "GoldenRun",
    "OUTPUTS_FILE",
    "brick_inputs",
    "run_brick",
    "run_pipeline",
    "generate_expected",
    "replay_brick",
    "replay_pipeline",
    "replay_dataset",
    "brick_workloads",
]

#: Listing of the files of each output port in an expected folder.
OUTPUTS_FILE = "OUTPUTS.json"
PIPELINE_DIR = "pipeline"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class GoldenRun:
    """How a golden dataset is processed (from the ``definition`` of its manifest).

    Attributes
    ----------
    pipeline : str
        ``xband-gp`` or ``xband-cp``.
    parameters : dict
        Parameter overrides per brick.
    burst_position : dict, optional
        ``{"ra":, "dec":, "error_radius_arcmin":}`` of the trigger (XBAND-CP).
    burst_id : str, optional
    caldb : str, optional
        CALDB root, relative to the checkout (default: the bundled ``fixtures_caldb``).
    telemetry : dict, optional
        The input is a telemetry dataset (CCSDS packets of the passes, no L1 file) made
        through a downlink with these defects (``loss_rate``, ``overlap_packets``,
        ``reorder_rate``, ``corrupt_rate``; ``seed`` of the downlink): the pipeline
        starts with the ``preprocess`` brick.
    """

    pipeline: str
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    burst_position: dict[str, Any] | None = None
    burst_id: str | None = None
    caldb: str | None = None
    telemetry: dict[str, Any] | None = None

    @classmethod
    def from_definition(cls, d: Mapping[str, Any]) -> GoldenRun:
        return cls(
            pipeline=str(d.get("pipeline", "xband-gp")),
            parameters={k: dict(v) for k, v in (d.get("parameters") or {}).items()},
            burst_position=dict(d["burst_position"]) if d.get("burst_position") else None,
            burst_id=d.get("burst_id"),
            caldb=d.get("caldb"),
            telemetry=dict(d["telemetry"]) if d.get("telemetry") is not None else None,
        )

    def build_pipeline(self):
        """The pipeline of the golden run (with ``preprocess`` first for a telemetry dataset)."""
        return get_pipeline(self.pipeline, telemetry=self.telemetry is not None)

    def caldb_root(self) -> Path:
        p = Path(self.caldb) if self.caldb else Path("fixtures_caldb")
        return p if p.is_absolute() else repo_root() / p

    def burst(self):
        if not self.burst_position:
            return None
        bp = self.burst_position
        return BurstPosition(float(bp["ra"]), float(bp["dec"]), bp.get("error_radius_arcmin"))

    def target(self, dataset: Path):
        """The ``{target}`` of a run on ``dataset`` (as ``mxt run DATASET`` builds it)."""
        req = request_from_dataset(dataset, self.pipeline, Path(tempfile.gettempdir()),
                                   burst_position=self.burst(), burst_id=self.burst_id)  # fmt: skip
        return req.target

    def obs_date(self, dataset: Path):
        manifest = json.loads((dataset / "dataset.json").read_text(encoding="utf-8"))
        t = manifest.get("tstart")
        return None if t is None else met_to_datetime(float(t))


# --------------------------------------------------------------------------------------
# Running bricks and pipelines
# --------------------------------------------------------------------------------------


def _outputs_listing(folder: Path) -> dict[str, list[dict[str, Any]]]:
    path = folder / OUTPUTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: the golden data of this brick are incomplete")
    return json.loads(path.read_text(encoding="utf-8"))["ports"]


def brick_inputs(pipeline, brick_name: str, dataset: Path, expected_root: Path, run: GoldenRun) -> dict[str, Any]:
    """Inputs of ``brick_name`` for a standalone run on golden data.

    ``observation`` is the dataset; the L1/ATT/ANG ports come from it; ``target`` is
    built from the dataset; any other input is the golden output of the last upstream
    brick producing it (``expected_root/<brick>/``).
    """
    brick = pipeline.brick(brick_name)
    order = [b.name for b in pipeline.bricks]
    upstream = order[: order.index(brick_name)]
    obs = ObservationInputs.from_dataset(dataset)
    external = obs.port_files()
    inputs: dict[str, Any] = {}
    for port in brick.inputs:
        if port.name == "observation":
            inputs["observation"] = str(dataset)
            continue
        if port.name == "target":
            inputs["target"] = run.target(dataset)
            continue
        producer = None
        for name in reversed(upstream):
            if any(p.name == port.name for p in pipeline.brick(name).outputs):
                producer = name
                break
        if producer is not None:
            listing = _outputs_listing(expected_root / producer).get(port.name, [])
            if not listing:
                if port.optional:
                    continue
                raise FileNotFoundError(f"brick {brick_name}: no golden file for input {port.name!r} (from {producer})")
            folder = expected_root / producer
            if port.codec.many:
                inputs[port.name] = {e["key"]: str(folder / e["path"]) for e in listing}
            else:
                inputs[port.name] = str(folder / listing[0]["path"])
        elif port.name in external and brick.load_inputs is None:
            files = external[port.name]
            if isinstance(files, Mapping):
                inputs[port.name] = {str(k): str(v) for k, v in files.items()}
            elif isinstance(files, (list, tuple)):
                inputs[port.name] = {Path(p).stem: str(p) for p in files}
            else:
                inputs[port.name] = str(files)
    return inputs


def _write_listing(out: Path, records: list[Any], brick: str, status: str, config: dict[str, Any]) -> None:
    """``OUTPUTS.json``: the files by port, the status and the effective configuration.

    ``config`` is what the brick (or each brick of the pipeline) ran with: parameter
    values with the CALDB-resolved ones over them, and the CALDB files with their
    SHA-256 (:meth:`~mxt_pipeline.pipelines.brick.BrickResult.configuration`).
    """
    ports: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        rel = Path(r.path)
        rel = rel.relative_to(out) if rel.is_absolute() else rel
        ports.setdefault(r.port, []).append({"path": rel.as_posix(), "key": r.key})
    doc = {"brick": brick, "status": status, "ports": ports, "config": config}
    write_json(out / OUTPUTS_FILE, doc)


def config_differences(test: Mapping[str, Any] | None, golden: Mapping[str, Any] | None) -> list[str]:
    """The differences of two effective configurations, one line per parameter or file.

    A configuration is ``{"params": {...}, "caldb": {CODE: {"file", "sha256"}}}`` for a
    brick, or such configurations by brick name for a pipeline.  A golden without one
    was blessed before configurations were recorded: that is a difference too (re-bless
    it with a reason).
    """
    if golden is None:
        return ["the golden output records no effective configuration (re-bless it with --reason)"]
    test = test or {}
    if "params" not in golden and "caldb" not in golden:  # a pipeline: by brick
        out = []
        for name in sorted(set(golden) | set(test)):
            if name not in test or name not in golden:
                where = "golden" if name not in test else "replay"
                out.append(f"{name}: brick only in the {where} configuration")
                continue
            out += [f"{name}.{line}" for line in config_differences(test[name], golden[name])]
        return out
    out = []
    tp, gp = test.get("params", {}), golden.get("params", {})
    for key in sorted(set(tp) | set(gp)):
        if tp.get(key, "<absent>") != gp.get(key, "<absent>"):
            out.append(f"{key}: {tp.get(key, '<absent>')!r} vs golden {gp.get(key, '<absent>')!r}")
    tc, gc = test.get("caldb", {}), golden.get("caldb", {})
    for code in sorted(set(tc) | set(gc)):
        a, b = tc.get(code), gc.get(code)
        if a != b:
            fa = a["file"] if a else "<none>"
            fb = b["file"] if b else "<none>"
            same = " (same name, other content)" if a and b and fa == fb else ""
            out.append(f"CALDB {code}: {fa} vs golden {fb}{same}")
    return out


def run_brick(pipeline, brick_name: str, dataset: Path, expected_root: Path, run: GoldenRun, out: Path):
    """Run one brick alone on golden inputs into ``out`` (which receives OUTPUTS.json).

    Returns
    -------
    BrickResult
        Never raises for a brick failure (``result.error`` says what happened).
    """
    brick = pipeline.brick(brick_name)
    inputs = brick_inputs(pipeline, brick_name, dataset, expected_root, run)
    target = inputs.get("target")
    obs_id = json.loads((dataset / "dataset.json").read_text(encoding="utf-8")).get("obs_id")
    out.mkdir(parents=True, exist_ok=True)
    res = brick.run_standalone(
        inputs,
        run.parameters.get(brick_name, {}),
        out,
        caldb=provider_from(run.caldb_root()) if brick.caldb else None,
        naming={"obs_id": str(obs_id)} if obs_id is not None else None,
        date=run.obs_date(dataset),
        target=target,
        raise_on_error=False,
    )
    _write_listing(out, res.outputs, brick_name, str(res.status), res.configuration())
    return res


def run_pipeline(dataset: Path, run: GoldenRun, out: Path, work: Path) -> tuple[Any, dict[str, list[str]]]:
    """Run the whole pipeline on ``dataset``; copy its products into ``out``.

    Returns the run outcome and the relative paths of the products per brick.
    """
    outcome = run_dataset(dataset, run.pipeline, work, caldb=str(run.caldb_root()), burst_position=run.burst(),
                          burst_id=run.burst_id, parameters=run.parameters, force=True)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    per_brick: dict[str, list[str]] = {}
    records: list[Any] = []
    if outcome.result is not None and outcome.collection is not None:
        for br in outcome.result.bricks:
            for r in br.outputs:
                src = outcome.collection / r.path
                if not src.exists():
                    continue
                dest = out / r.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
                per_brick.setdefault(br.name, []).append(Path(r.path).as_posix())
                records.append(r)
    status = str(outcome.status.status) if outcome.status is not None else "UNKNOWN"
    config = {} if outcome.result is None else {br.name: br.configuration() for br in outcome.result.bricks}
    _write_listing(out, records, PIPELINE_DIR, status, config)
    return outcome, per_brick


def generate_expected(dataset: Path, run: GoldenRun, expected_root: Path) -> dict[str, str]:
    """Write ``expected/<brick>/`` for every brick, then ``expected/pipeline/``.

    Returns the status of each brick run and of the pipeline run.
    """
    pipeline = run.build_pipeline()
    statuses: dict[str, str] = {}
    for brick in pipeline.bricks:
        res = run_brick(pipeline, brick.name, dataset, expected_root, run, expected_root / brick.name)
        statuses[brick.name] = str(res.status)
        if res.error is not None:
            raise RuntimeError(f"brick {brick.name} failed on the golden input: {res.error.type}: {res.error.message}")
    with tempfile.TemporaryDirectory(prefix="mxt-golden-") as work:
        outcome, _ = run_pipeline(dataset, run, expected_root / PIPELINE_DIR, Path(work))
    statuses[PIPELINE_DIR] = str(outcome.status.status)
    return statuses


# --------------------------------------------------------------------------------------
# Comparison with the golden outputs
# --------------------------------------------------------------------------------------


def _compare_folder(test: Path, expected: Path, cfg: HarnessConfig) -> dict[str, FileDiff]:
    """Compare the files listed in both OUTPUTS.json (plus the listings themselves)."""
    diffs: dict[str, FileDiff] = {}
    t_doc = json.loads((test / OUTPUTS_FILE).read_text(encoding="utf-8"))
    e_doc = json.loads((expected / OUTPUTS_FILE).read_text(encoding="utf-8"))
    t_files = {e["path"] for v in t_doc["ports"].values() for e in v}
    e_files = {e["path"] for v in e_doc["ports"].values() for e in v}
    for rel in sorted(e_files | t_files):
        d = FileDiff(str(test / rel), str(expected / rel))
        if rel not in t_files:
            d.differences.append(Difference("file", "", rel, "not written (the golden run wrote it)"))
        elif rel not in e_files:
            d.differences.append(Difference("file", "", rel, "written, but not by the golden run"))
        elif rel.lower().endswith(".png"):
            if (test / rel).read_bytes()[:8] != _PNG_MAGIC:
                d.differences.append(Difference("file", "", rel, "not a PNG file"))
        else:
            d = compare_files(test / rel, expected / rel, cfg)
        diffs[rel] = d
    if t_doc.get("status") != e_doc.get("status"):
        d = FileDiff(str(test / OUTPUTS_FILE), str(expected / OUTPUTS_FILE), content="STATUS")
        d.differences.append(Difference("json", "", "status", f"{t_doc.get('status')} vs golden {e_doc.get('status')}"))
        diffs[OUTPUTS_FILE] = d
    changed = config_differences(t_doc.get("config"), e_doc.get("config"))
    if changed:
        # The replay ran with another configuration than the golden run: a parameter
        # default or a CALDB file changed.  The outputs may still agree within
        # tolerance; the configuration is judged on its own.
        d = FileDiff(str(test / OUTPUTS_FILE), str(expected / OUTPUTS_FILE), content="CONFIG")
        d.differences += [Difference("config", "", line.split(":")[0], line) for line in changed]
        diffs[OUTPUTS_FILE + "#config"] = d
    return diffs


def differing_quantities(d: FileDiff, limit: int = 40) -> str:
    """Every quantity that differs in ``d``, grouped by HDU: ``[EVENTS] ENERGY, PI; [GTI] rows``
    (empty when only whole files differ).

    The one-line failure message names them all (the details keep the full account), so
    a reader, or a test, sees at once which columns, keywords or JSON keys moved.
    """
    groups: dict[str, list[str]] = {}
    for x in d.differences:
        if x.kind == "file":
            continue  # a missing or extra file, or raw bytes: the message says it in full
        if x.kind in ("rows", "image", "hdu"):
            name = {"rows": "rows", "image": "image", "hdu": "HDU"}[x.kind]
        elif x.kind == "json":
            name = x.name
        else:
            name = x.name or x.kind
        where = f"[{x.hdu}]" if x.hdu else ""
        names = groups.setdefault(where, [])
        if name not in names:
            names.append(name)
    out = []
    n = 0
    for where, names in groups.items():
        shown = names[: max(limit - n, 0)]
        n += len(shown)
        if shown:
            out.append(f"{where} {', '.join(shown)}".strip())
    total = sum(len(v) for v in groups.values())
    return "; ".join(out) + (f" (+{total - n} more)" if total > n else "")


def _verdict(section: str, name: str, who: str, diffs: dict[str, FileDiff], figures: dict[str, Any], t0: float) -> CheckResult:
    bad = {rel: d for rel, d in diffs.items() if not d.identical}
    n_values = sum(d.n_values_compared for d in diffs.values())
    figures = {**figures, "files": len(diffs), "files_differing": len(bad), "values_compared": n_values}
    details = "\n\n".join(d.account() for d in bad.values())
    if not bad:
        return CheckResult(section, name, Status.PASS, f"{who}: {len(diffs)} file(s) identical within tolerances",
                           figures, elapsed_s=time.perf_counter() - t0)  # fmt: skip
    parts = []
    for rel, d in bad.items():
        lines = [x.line() for x in d.differences]
        more = f" (+{len(lines) - 2} more)" if len(lines) > 2 else ""
        qty = differing_quantities(d)
        parts.append(f"{Path(rel).name}: " + (f"differs in {qty}: " if qty else "") + " | ".join(lines[:2]) + more)
    return CheckResult(section, name, Status.FAIL, f"{who}: " + "; ".join(parts), figures, details=details,
                       elapsed_s=time.perf_counter() - t0)  # fmt: skip


def replay_brick(golden_dir: Path, brick_name: str, run: GoldenRun, cfg: HarnessConfig, work: Path) -> tuple[CheckResult, Path]:
    """Replay one brick on its golden input; compare with ``expected/<brick>/``."""
    t0 = time.perf_counter()
    name = f"{golden_dir.name}/{brick_name}"
    who = f"brick {brick_name}"
    out = work / brick_name
    shutil.rmtree(out, ignore_errors=True)
    try:
        pipeline = run.build_pipeline()
        res = run_brick(pipeline, brick_name, golden_dir / "input", golden_dir / "expected", run, out)
    except Exception as exc:  # an input the brick could not even be given
        return CheckResult("replay", name, Status.FAIL, f"{who}: could not run: {type(exc).__name__}: {exc}",
                           elapsed_s=time.perf_counter() - t0), out  # fmt: skip
    if res.error is not None:
        where = "/".join(str(x) for x in (res.error.hdu, res.error.column or res.error.keyword) if x)
        msg = f"{who} failed in phase {res.error.phase}: {res.error.type}: {res.error.message}" + (f" ({where})" if where else "")
        return CheckResult("replay", name, Status.FAIL, msg, {"elapsed_s": res.elapsed_s},
                           details=res.error.traceback or "", elapsed_s=time.perf_counter() - t0), out  # fmt: skip
    try:
        diffs = _compare_folder(out, golden_dir / "expected" / brick_name, cfg)
    except Exception as exc:  # an output the diff cannot read is a failure of the brick
        return CheckResult("replay", name, Status.FAIL, f"{who}: outputs could not be compared: {type(exc).__name__}: {exc}",
                           elapsed_s=time.perf_counter() - t0), out  # fmt: skip
    return _verdict("replay", name, who, diffs, {"brick_status": str(res.status), "elapsed_s": res.elapsed_s}, t0), out


def replay_pipeline(golden_dir: Path, run: GoldenRun, cfg: HarnessConfig, work: Path) -> tuple[CheckResult, Path]:
    """Run the pipeline end to end on the golden input; compare with ``expected/pipeline/``."""
    t0 = time.perf_counter()
    name = f"{golden_dir.name}/{run.pipeline}"
    who = f"pipeline {run.pipeline}"
    out = work / PIPELINE_DIR
    shutil.rmtree(out, ignore_errors=True)
    try:
        outcome, _ = run_pipeline(golden_dir / "input", run, out, work / "run")
    except Exception as exc:
        return CheckResult("pipeline", name, Status.FAIL, f"{who}: crashed: {type(exc).__name__}: {exc}",
                           elapsed_s=time.perf_counter() - t0), out  # fmt: skip
    try:
        diffs = _compare_folder(out, golden_dir / "expected" / PIPELINE_DIR, cfg)
    except Exception as exc:
        return CheckResult("pipeline", name, Status.FAIL, f"{who}: outputs could not be compared: {type(exc).__name__}: {exc}",
                           elapsed_s=time.perf_counter() - t0), out  # fmt: skip
    figures = {"status": str(outcome.status.status)}
    if outcome.result is not None:
        figures.update({f"{k}_s": round(v, 3) for k, v in outcome.result.timings().items()})
    return _verdict("pipeline", name, who, diffs, figures, t0), out


def _expected_bricks(golden_dir: Path) -> list[str]:
    """Bricks for which the golden dataset holds an expected output folder."""
    root = golden_dir / "expected"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != PIPELINE_DIR and (p / OUTPUTS_FILE).exists())


def replay_dataset(golden_dir: Path, cfg: HarnessConfig, work: Path, *, bricks: bool = True, pipeline: bool = True,
                   only: tuple[str, ...] | None = None) -> tuple[list[CheckResult], dict[str, Path]]:  # fmt: skip
    """Replay every brick (or the bricks named in ``only``) and the pipeline of one golden dataset.

    Never raises for a problem of the pipeline under test: a pipeline that cannot be
    built (unknown name, import error), a brick the golden dataset has expected output
    for but the pipeline no longer has, or a brick that crashes, each becomes a failing
    check naming the dataset, the pipeline and the brick.

    Returns the checks and the output folders (for the schema/fitsverify checks).
    """
    checks: list[CheckResult] = []
    outputs: dict[str, Path] = {}
    try:
        manifest = json.loads((golden_dir / "MANIFEST.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [CheckResult("replay", golden_dir.name, Status.FAIL, f"golden manifest unreadable: {type(exc).__name__}: {exc}")], outputs
    run = GoldenRun.from_definition(manifest.get("definition", {}))
    try:
        pipe = run.build_pipeline()
    except Exception as exc:  # the pipeline under test cannot even be built
        section = "replay" if bricks else "pipeline"
        return [CheckResult(section, f"{golden_dir.name}/{run.pipeline}", Status.FAIL,
                            f"pipeline {run.pipeline} could not be built: {type(exc).__name__}: {exc}")], outputs  # fmt: skip
    if bricks:
        present = [b.name for b in pipe.bricks]
        for gone in _expected_bricks(golden_dir):
            if gone not in present and (only is None or gone in only):
                checks.append(CheckResult("replay", f"{golden_dir.name}/{gone}", Status.FAIL,
                                          f"brick {gone}: missing from pipeline {run.pipeline} (golden output expected/{gone}/ exists); "
                                          f"bricks now: {', '.join(present)}"))  # fmt: skip
        for brick in pipe.bricks:
            if only is not None and brick.name not in only:
                continue
            if not (golden_dir / "expected" / brick.name / OUTPUTS_FILE).exists():
                checks.append(CheckResult("replay", f"{golden_dir.name}/{brick.name}", Status.MISSING,
                                          f"brick {brick.name}: no golden output (expected/{brick.name}/ missing): "
                                          f"regenerate with 'python -m harness golden make {golden_dir.name}'"))  # fmt: skip
                continue
            check, out = replay_brick(golden_dir, brick.name, run, cfg, work / golden_dir.name)
            checks.append(check)
            outputs[f"{golden_dir.name}/{brick.name}"] = out
    if pipeline:
        if not (golden_dir / "expected" / PIPELINE_DIR / OUTPUTS_FILE).exists():
            checks.append(CheckResult("pipeline", f"{golden_dir.name}/{run.pipeline}", Status.MISSING,
                                      "no golden pipeline output (expected/pipeline/ missing)"))  # fmt: skip
        else:
            check, out = replay_pipeline(golden_dir, run, cfg, work / golden_dir.name)
            checks.append(check)
            outputs[f"{golden_dir.name}/{run.pipeline}"] = out
    return checks, outputs


def brick_workloads(golden_dir: Path, work: Path) -> dict[str, Any]:
    """Callables running each brick of ``golden_dir`` alone on its golden input (for timing)."""
    manifest = json.loads((golden_dir / "MANIFEST.json").read_text(encoding="utf-8"))
    run = GoldenRun.from_definition(manifest.get("definition", {}))
    pipeline = run.build_pipeline()
    out: dict[str, Any] = {}
    for brick in pipeline.bricks:
        if not brick.critical:
            continue  # previews: their time is matplotlib's

        def fn(b=brick.name) -> None:
            res = run_brick(pipeline, b, golden_dir / "input", golden_dir / "expected", run, work / b)
            if res.error is not None:
                raise RuntimeError(f"brick {b} failed: {res.error.message}")

        out[f"{golden_dir.name}/{brick.name}"] = fn
    return out
