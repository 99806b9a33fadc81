"""The brick: one task of a pipeline, with declared inputs, outputs, parameters and CALDB.

A :class:`Brick` is made of

* declared **inputs** and **outputs** (:class:`~mxt_pipeline.pipelines.ports.Port`),
  each with a codec saying how the data go to and from files;
* declared **parameters** (:class:`~mxt_pipeline.pipelines.parameters.Parameter`),
  validated before the brick runs;
* the **CALDB code names** it needs;
* a pure **core** function ``core(inputs, params, cal)`` working on in-memory objects
  and returning its outputs (a mapping, or a :class:`CoreResult` to report NO_DATA,
  warnings or figures);
* a thin **I/O shell**, the same for every brick (:meth:`Brick.run`): gather the
  inputs from the context (reading files only for data not already in memory), get the
  calibration, call the core, write the outputs atomically and hash them.

Any brick runs alone with :meth:`Brick.run_standalone` (files in, files out), which is
how the regression harness replays each brick on its golden input.

Phases.  :meth:`Brick.run` goes through the phases ``parameters``, ``inputs``,
``caldb``, ``core``, ``outputs``; a failure is recorded with the phase where it
happened, so the processing status can tell a CALDB that is down (phase ``caldb``)
from a science database that is down (phase ``inputs``) from a bug (phase ``core``).
"""

from __future__ import annotations

import enum
import logging
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mxt_pipeline.detect.blas import single_blas_thread
from mxt_pipeline.errors import MXTError, MXTFormatError, MXTPipelineError, MXTSchemaError
from mxt_pipeline.io import fitsverify, validate_file
from mxt_pipeline.io.fits import checked_by_writer, read_product
from mxt_pipeline.pipelines.caldb_bundle import CalibrationBundle, provider_from
from mxt_pipeline.pipelines.context import RunContext
from mxt_pipeline.pipelines.parameters import Parameter, ParameterSet
from mxt_pipeline.pipelines.ports import FileRecord, Port, file_record

__all__ = ["Brick", "BrickStatus", "BrickResult", "CoreResult", "ErrorInfo", "PHASES", "check_product"]

log = logging.getLogger(__name__)

#: Phases of a brick run, in order.
PHASES = ("parameters", "inputs", "caldb", "core", "outputs")

Core = Callable[[dict[str, Any], ParameterSet, CalibrationBundle], Any]
InputLoader = Callable[["Brick", RunContext], tuple[dict[str, Any], list[FileRecord], list[str]]]


class BrickStatus(enum.StrEnum):
    """Outcome of one brick."""

    SUCCESS = "SUCCESS"
    #: Completed, but with less input than expected (a missing pass) or with warnings
    #: that lower the quality of the products.
    DEGRADED = "DEGRADED"
    #: Completed with valid but empty products (no events, no source).
    NO_DATA = "NO_DATA"
    FAILED = "FAILED"
    #: Not run because an earlier critical brick failed.
    SKIPPED = "SKIPPED"


@dataclass
class CoreResult:
    """What a core may return instead of a plain mapping of outputs.

    Attributes
    ----------
    outputs : dict
        Values by output port name.
    no_data : bool
        The products are valid but empty (the brick ends NO_DATA).
    warnings : list of str
        Problems that lower the quality of the products (the brick ends DEGRADED).
    metrics : dict
        Figures for the run report (counts, exposure, ...), JSON-serialisable.
    effective : dict
        The configuration in force where it is not a parameter's value: a parameter
        left null and resolved from the CALDB (the detection threshold), the origin of
        a calibrated table.  Recorded in the run report and compared by the
        regression harness with the golden configuration.
    """

    outputs: dict[str, Any]
    no_data: bool = False
    warnings: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    effective: dict[str, Any] = field(default_factory=dict)


@dataclass
class ErrorInfo:
    """A failure, for the status file and the report (never holds a secret)."""

    type: str
    message: str
    phase: str
    file: str | None = None
    hdu: str | int | None = None
    column: str | None = None
    keyword: str | None = None
    traceback: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, phase: str, *, with_traceback: bool = False) -> ErrorInfo:
        info = cls(type(exc).__name__, str(exc), phase)
        if isinstance(exc, MXTError):
            info.message = exc.message
            info.file, info.hdu, info.column, info.keyword = exc.file, exc.hdu, exc.column, exc.keyword
        if with_traceback:
            info.traceback = "".join(traceback.format_exception(exc))[-4000:]
        return info

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class BrickResult:
    """The record of one brick run (one section of the run report)."""

    name: str
    status: BrickStatus = BrickStatus.SKIPPED
    started: str | None = None
    elapsed_s: float = 0.0
    phase_s: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    effective: dict[str, Any] = field(default_factory=dict)
    inputs: list[FileRecord] = field(default_factory=list)
    outputs: list[FileRecord] = field(default_factory=list)
    caldb: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: ErrorInfo | None = None
    resumed: bool = False
    critical: bool = True
    #: The exception that failed the brick (not serialised).
    exception: BaseException | None = field(default=None, repr=False)
    #: Output values in memory (not serialised).
    values: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status in (BrickStatus.SUCCESS, BrickStatus.DEGRADED, BrickStatus.NO_DATA)

    def configuration(self) -> dict[str, Any]:
        """The configuration the brick ran with: parameter values with the effective
        ones over them, and the CALDB files (name and SHA-256) by code name."""
        caldb = {c["code"]: {"file": c.get("file"), "sha256": c.get("sha256")} for c in self.caldb}
        return {"params": {**self.params, **self.effective}, "caldb": dict(sorted(caldb.items()))}

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "status": str(self.status),
            "critical": self.critical,
            "started": self.started,
            "elapsed_s": round(self.elapsed_s, 6),
            "phase_s": {k: round(v, 6) for k, v in self.phase_s.items()},
            "params": self.params,
            "effective": self.effective,
            "inputs": [r.to_dict() for r in self.inputs],
            "outputs": [r.to_dict() for r in self.outputs],
            "caldb": self.caldb,
            "warnings": self.warnings,
            "metrics": self.metrics,
            "resumed": self.resumed,
        }
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BrickResult:
        err = d.get("error")
        return cls(
            name=d["name"],
            status=BrickStatus(d["status"]),
            started=d.get("started"),
            elapsed_s=float(d.get("elapsed_s", 0.0)),
            phase_s=dict(d.get("phase_s", {})),
            params=dict(d.get("params", {})),
            effective=dict(d.get("effective", {})),
            inputs=[FileRecord.from_dict(r) for r in d.get("inputs", [])],
            outputs=[FileRecord.from_dict(r) for r in d.get("outputs", [])],
            caldb=list(d.get("caldb", [])),
            warnings=list(d.get("warnings", [])),
            metrics=dict(d.get("metrics", {})),
            error=ErrorInfo(**err) if err else None,
            resumed=bool(d.get("resumed", False)),
            critical=bool(d.get("critical", True)),
        )


def _now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, eq=False)
class Brick:
    """One task of a pipeline.

    Parameters
    ----------
    name : str
        Identifier, unique in a pipeline (``calibrate``, ``detect``, ...).
    summary : str
        One line saying what it does.
    core : callable
        ``core(inputs, params, cal) -> mapping or CoreResult``; pure: no file access.
    inputs, outputs : sequence of Port
    params : sequence of Parameter
    caldb : sequence of str
        CALDB code names the core needs.
    critical : bool
        A failure stops the pipeline (True) or only makes the run PARTIAL (False).
    early : bool
        Outputs are fast products, published as soon as written (XBAND-CP).
    load_inputs : callable, optional
        Replaces the generic input gathering (the calibration brick uses it to read a
        dataset's passes and to request SAA files from the science database).
    """

    name: str
    summary: str
    core: Core
    inputs: tuple[Port, ...] = ()
    outputs: tuple[Port, ...] = ()
    params: tuple[Parameter, ...] = ()
    caldb: tuple[str, ...] = ()
    critical: bool = True
    early: bool = False
    load_inputs: InputLoader | None = None

    def __post_init__(self) -> None:
        for group in ("inputs", "outputs", "params"):
            names = [x.name for x in getattr(self, group)]
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"brick {self.name}: duplicate {group} {sorted(dup)}")
        object.__setattr__(self, "caldb", tuple(c.upper() for c in self.caldb))

    def __repr__(self) -> str:
        return f"Brick({self.name!r})"

    # ---- description -------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """JSON-ready description (documentation, ``mxt run --describe``)."""
        return {
            "name": self.name,
            "summary": self.summary,
            "critical": self.critical,
            "early": self.early,
            "inputs": [p.describe() for p in self.inputs],
            "outputs": [p.describe() for p in self.outputs],
            "params": [p.describe() for p in self.params],
            "caldb": list(self.caldb),
        }

    # ---- the I/O shell -----------------------------------------------------------------
    def gather_inputs(self, ctx: RunContext) -> tuple[dict[str, Any], list[FileRecord], list[str]]:
        """Inputs of the core from the context: values in memory, else read from files.

        Returns the values by port, the records of the files behind them and the
        warnings met while the files were gathered.
        """
        values: dict[str, Any] = {}
        records: list[FileRecord] = []
        warnings: list[str] = []
        for port in self.inputs:
            recs = ctx.records.get(port.name, [])
            records += recs
            warnings += ctx.input_warnings.get(port.name, [])
            if port.name in ctx.values:
                values[port.name] = ctx.values[port.name]
            elif recs:
                if port.codec.read is None:
                    raise MXTPipelineError(f"brick {self.name}: input {port.name!r} cannot be read from a file")
                if port.codec.many:
                    value: Any = {r.key or Path(r.path).stem: port.codec.read(ctx.path_of(r)) for r in recs}
                else:
                    value = port.codec.read(ctx.path_of(recs[0]))
                ctx.values[port.name] = value
                values[port.name] = value
            elif port.optional:
                values[port.name] = None
            else:
                raise MXTPipelineError(
                    f"brick {self.name}: input {port.name!r} was produced by no earlier brick and given as no file",
                    keyword=port.name,
                )
        return values, records, warnings

    def write_outputs(self, ctx: RunContext, outputs: Mapping[str, Any]) -> list[FileRecord]:
        """Check the core's outputs against the declaration, write and hash them."""
        declared = {p.name: p for p in self.outputs}
        unknown = sorted(set(outputs) - set(declared))
        if unknown:
            raise MXTPipelineError(f"brick {self.name}: core returned undeclared outputs {unknown}")
        records: list[FileRecord] = []
        for port in self.outputs:
            value = outputs.get(port.name)
            if value is None:
                if not port.optional:
                    raise MXTPipelineError(f"brick {self.name}: core returned no {port.name!r}", keyword=port.name)
                continue
            ctx.values[port.name] = value
            codec = port.codec
            if not codec.persistent or not ctx.persist:
                continue
            recs = []
            if codec.many:
                if not isinstance(value, Mapping):
                    raise MXTPipelineError(f"brick {self.name}: output {port.name!r} must be a mapping key -> value")
                items = [(str(k), v) for k, v in value.items()]
            else:
                items = [(None, value)]
            for key, item in items:
                name = codec.filename(ctx.naming, key)
                path = ctx.out_dir / name
                try:
                    codec.write(path, item, ctx.naming)
                except MXTSchemaError as exc:
                    # ``write_product`` refuses a product that fails its schema before
                    # the file exists: a bug of the brick (INTERNAL_ERROR), not a bad input.
                    first = exc.violations[0] if exc.violations else exc
                    raise MXTPipelineError(
                        f"product fails its format ({len(exc.violations)} problem(s)): {first.message}",
                        file=path, hdu=getattr(first, "hdu", None), column=getattr(first, "column", None),
                        keyword=getattr(first, "keyword", None),
                    ) from exc
                rec = file_record(port.name, path, relative_to=ctx.out_dir, key=key, kind=codec.name, role=codec.role)
                if codec.fits and ctx.check_products:
                    rec.extra["checks"] = check_product(path)
                recs.append(rec)
            ctx.records[port.name] = recs
            records += recs
        return records

    def run(self, ctx: RunContext) -> BrickResult:
        """Run the brick in a context: inputs, calibration, core, outputs.

        Never raises an :class:`Exception`: a failure is recorded in the result
        (status FAILED, the phase and the error).  ``KeyboardInterrupt`` and
        ``SystemExit`` go through, so an interrupted run stops at once.
        """
        res = BrickResult(self.name, started=_now(), critical=self.critical)
        t_start = time.perf_counter()
        phase = PHASES[0]
        clock = t_start

        def lap(next_phase: str) -> None:
            nonlocal phase, clock
            now = time.perf_counter()
            res.phase_s[phase] = now - clock
            phase, clock = next_phase, now

        try:
            params = ParameterSet(self.name, self.params, ctx.parameters.get(self.name))
            res.params = params.as_dict()
            lap("inputs")
            loader = self.load_inputs or Brick.gather_inputs
            gathered = loader(self, ctx)
            values, res.inputs, input_warnings = gathered
            res.warnings += input_warnings
            if "obs_id" not in ctx.naming:
                ctx.naming["obs_id"] = _find_obs_id(values, ctx) or "standalone"
            lap("caldb")
            cal = ctx.bundle(self.caldb)
            res.caldb = [f.to_dict() for f in cal.files.values()]
            lap("core")
            # One BLAS thread for every brick's core (the process's thread policy).
            with single_blas_thread():
                out = self.core(values, params, cal)
            if not isinstance(out, CoreResult):
                if not isinstance(out, Mapping):
                    raise MXTPipelineError(f"brick {self.name}: core must return a mapping or a CoreResult")
                out = CoreResult(dict(out))
            res.warnings += list(out.warnings)
            res.metrics.update(out.metrics)
            res.effective.update(out.effective)
            lap("outputs")
            res.outputs = self.write_outputs(ctx, out.outputs)
            res.values = {k: v for k, v in out.outputs.items() if v is not None}
            lap("done")
            if out.no_data:
                res.status = BrickStatus.NO_DATA
            elif res.warnings:
                res.status = BrickStatus.DEGRADED
            else:
                res.status = BrickStatus.SUCCESS
        except Exception as exc:  # recorded, not raised: the pipeline decides what follows
            interrupt = _interrupt_in_chain(exc)
            if interrupt is not None:
                # A signal arrived inside compiled code (numba turns it into SystemError):
                # it is still an interruption, not a failure of the brick.
                raise interrupt from None
            res.phase_s[phase] = time.perf_counter() - clock
            res.status = BrickStatus.FAILED
            res.exception = exc
            res.error = ErrorInfo.from_exception(exc, phase, with_traceback=not isinstance(exc, MXTError))
            log.error("brick %s failed in phase %s: %s", self.name, phase, exc)
        res.elapsed_s = time.perf_counter() - t_start
        if res.ok and self.early and ctx.on_early_outputs is not None and res.outputs:
            ctx.on_early_outputs(self, res.outputs)
        return res

    def run_standalone(
        self,
        inputs: Mapping[str, Any],
        params: Mapping[str, Any] | None = None,
        out_dir: str | os.PathLike[str] = ".",
        *,
        caldb: Any = None,
        naming: Mapping[str, Any] | None = None,
        date: datetime | None = None,
        target: Any = None,
        services: Mapping[str, Any] | None = None,
        raise_on_error: bool = True,
        persist: bool = True,
    ) -> BrickResult:
        """Run this brick alone: inputs as files or objects, outputs written to ``out_dir``.

        Parameters
        ----------
        inputs : mapping
            By input port: a path (or a list/mapping of paths for a many input), read
            with the port's codec, or an in-memory value.
        params : mapping, optional
            Parameter values (validated as in a pipeline run).
        out_dir : path-like
            Output folder (created).
        caldb : optional
            Calibration source, see :func:`~mxt_pipeline.pipelines.caldb_bundle.provider_from`.
            Not used when the brick declares no code name.
        naming : mapping, optional
            File-name fields; ``obs_id`` defaults to the OBS_ID found in the inputs'
            metadata, else ``standalone``.
        date : datetime, optional
            Date of the CALDB selection (default: now).
        target, services : optional
            As in a pipeline run.
        raise_on_error : bool
            Re-raise the error of a failed brick (default) instead of returning the
            FAILED result.
        persist : bool
            Write the outputs (default); False keeps them in ``values`` only, and
            ``out_dir`` is not created.

        Returns
        -------
        BrickResult
            With ``values`` holding the outputs in memory.
        """
        out = Path(out_dir)
        if persist:
            out.mkdir(parents=True, exist_ok=True)
        ctx = RunContext(out_dir=out, parameters={self.name: dict(params or {})}, obs_date=date,
                         target=target, services=dict(services or {}), persist=persist)  # fmt: skip
        for name, value in inputs.items():
            if _is_path_like(value):
                ctx.provide_files(name, value)
            else:
                ctx.values[name] = value
        if self.caldb:
            ctx.calibration = provider_from(caldb)
        ctx.naming = dict(naming or {})
        result = self.run(ctx)
        if raise_on_error and result.exception is not None:
            raise result.exception
        return result


def check_product(path: Path) -> dict[str, str]:
    """Check a FITS product just written: its schema, then ``fitsverify`` when installed.

    Returns what was checked (``{"schema": "ok", "fitsverify": "ok" | "not installed"}``).

    Raises
    ------
    MXTPipelineError
        The product fails a check (a bug of the brick that wrote it: INTERNAL_ERROR);
        the file is deleted first, so it can never be published.
    """
    if checked_by_writer(path):
        # ``write_product`` checked the values before writing; what is left to check is
        # that the file on disk reads back (structure, checksums).
        try:
            read_product(path)
            problems = []
        except MXTFormatError as exc:
            problems = [exc]
    else:
        problems = validate_file(path)
    if problems:
        Path(path).unlink(missing_ok=True)
        first = problems[0]
        raise MXTPipelineError(f"product fails its format ({len(problems)} problem(s)): {first.message}",
                               file=path, hdu=first.hdu, column=first.column, keyword=first.keyword)  # fmt: skip
    checks = {"schema": "ok", "fitsverify": "not installed"}
    if fitsverify.fitsverify_available():
        fv = fitsverify.run_fitsverify(path)
        if not fv.ok:
            Path(path).unlink(missing_ok=True)
            detail = " | ".join(ln.strip() for ln in fv.output.splitlines() if "*** Error" in ln)[:500]
            raise MXTPipelineError(f"product fails fitsverify ({fv.errors} error(s)): {detail}", file=path)
        checks["fitsverify"] = "ok"
    return checks


def _interrupt_in_chain(exc: BaseException) -> BaseException | None:
    """The KeyboardInterrupt or Interrupted that caused ``exc``, if any."""
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if not isinstance(cur, Exception):  # BaseException only: an interrupt
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def _is_path_like(value: Any) -> bool:
    if isinstance(value, (str, os.PathLike)):
        return True
    if isinstance(value, Mapping):
        return bool(value) and all(isinstance(v, (str, os.PathLike)) for v in value.values())
    if isinstance(value, Sequence) and not isinstance(value, (bytes, str)):
        return bool(value) and all(isinstance(v, (str, os.PathLike)) for v in value)
    return False


def _find_obs_id(values: Mapping[str, Any], ctx: RunContext) -> str | None:
    """OBS_ID from the target, else from the metadata of the inputs."""
    if ctx.target is not None and getattr(ctx.target, "obs_id", None):
        return str(ctx.target.obs_id)
    for value in values.values():
        if isinstance(value, Mapping) and value and not hasattr(value, "meta"):
            value = next(iter(value.values()))
        meta = getattr(value, "meta", None)
        if isinstance(meta, Mapping) and meta.get("OBS_ID"):
            return str(meta["OBS_ID"])
    return None
