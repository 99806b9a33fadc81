"""A pipeline: an ordered list of bricks, run with progress, timing and status per brick.

The wiring is checked when the pipeline is built: every input a brick needs is either
an output of an earlier brick or one of the pipeline's declared external inputs (the
files of the dataset, the target).  A pipeline with a dangling input is refused at
import time rather than failing half way through a night of processing.

Running (:meth:`Pipeline.run`):

* each brick runs in turn in the shared :class:`~mxt_pipeline.pipelines.context.RunContext`;
* a *critical* brick that fails stops the pipeline; the following bricks are SKIPPED;
* a *non-critical* brick (previews) that fails leaves the run PARTIAL and the others
  go on; a brick whose input came from a failed brick is SKIPPED;
* bricks already completed by an interrupted attempt (``completed``) are not run
  again: their recorded output files are taken over (see
  :mod:`mxt_pipeline.pipelines.collection`);
* a ``tqdm`` progress bar on stderr names the running brick.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.pipelines.brick import Brick, BrickResult, BrickStatus
from mxt_pipeline.pipelines.context import RunContext
from mxt_pipeline.pipelines.parameters import ParameterSet

__all__ = ["Pipeline", "PipelineResult"]

log = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    """Results of every brick of a run, in pipeline order."""

    pipeline: str
    bricks: list[BrickResult] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def failed(self) -> BrickResult | None:
        """The first critical brick that failed, if any."""
        return next((b for b in self.bricks if b.status is BrickStatus.FAILED and b.critical), None)

    def result(self, name: str) -> BrickResult:
        for b in self.bricks:
            if b.name == name:
                return b
        raise KeyError(name)

    def timings(self) -> dict[str, float]:
        """Elapsed seconds per brick."""
        return {b.name: b.elapsed_s for b in self.bricks}


class Pipeline:
    """An ordered list of bricks.

    Parameters
    ----------
    name : str
        ``xband-gp``, ``xband-cp``, ...
    bricks : sequence of Brick
    external : iterable of str
        Names of the inputs given from outside (dataset files, ``target``).
    summary : str
        One line for the documentation.
    """

    def __init__(self, name: str, bricks: Sequence[Brick], external: Iterable[str] = (), summary: str = ""):
        self.name = name
        self.bricks = list(bricks)
        self.external = frozenset(external)
        self.summary = summary
        self._check_wiring()

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, {[b.name for b in self.bricks]})"

    def _check_wiring(self) -> None:
        names = [b.name for b in self.bricks]
        if len(set(names)) != len(names):
            raise ValueError(f"pipeline {self.name}: duplicate brick names in {names}")
        available = set(self.external)
        producers: dict[str, str] = {}
        for brick in self.bricks:
            for port in brick.inputs:
                if port.name not in available and not port.optional:
                    raise ValueError(
                        f"pipeline {self.name}: brick {brick.name!r} needs {port.name!r}, "
                        "which no earlier brick produces and which is not an external input"
                    )
            for port in brick.outputs:
                if port.name in producers:
                    raise ValueError(
                        f"pipeline {self.name}: {port.name!r} is produced by both "
                        f"{producers[port.name]!r} and {brick.name!r}"
                    )
                producers[port.name] = brick.name
                available.add(port.name)

    @property
    def caldb_codes(self) -> list[str]:
        """Every CALDB code name the bricks need (resolved once before a run)."""
        return sorted({c for b in self.bricks for c in b.caldb})

    def brick(self, name: str) -> Brick:
        for b in self.bricks:
            if b.name == name:
                return b
        raise KeyError(f"pipeline {self.name} has no brick {name!r}")

    def check_parameters(self, overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Validate parameter overrides for every brick before running (raises MXTInputError).

        Returns the effective values of every parameter of every brick.
        """
        unknown = sorted(set(overrides) - {b.name for b in self.bricks})
        if unknown:
            raise MXTInputError(
                f"parameters given for unknown brick(s) {unknown} of pipeline {self.name} "
                f"(bricks: {[b.name for b in self.bricks]})",
                keyword=unknown[0],
            )
        return {b.name: ParameterSet(b.name, b.params, overrides.get(b.name)).as_dict() for b in self.bricks}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "external": sorted(self.external),
            "caldb": self.caldb_codes,
            "bricks": [b.describe() for b in self.bricks],
        }

    def resumable_prefix(self, completed: Mapping[str, BrickResult]) -> list[str]:
        """Names of the leading bricks that can be taken over from an earlier attempt.

        A brick qualifies when it completed and every output it declares is written to
        files (a memory-only output cannot be taken over).  Only a prefix qualifies:
        after the first brick that must run again, every later brick runs again.
        """
        out = []
        for brick in self.bricks:
            prev = completed.get(brick.name)
            if prev is None or not prev.ok or not all(p.codec.persistent for p in brick.outputs):
                break
            out.append(brick.name)
        return out

    def run(
        self,
        ctx: RunContext,
        *,
        progress: bool = False,
        completed: Mapping[str, BrickResult] | None = None,
        on_start: Callable[[Brick, int], None] | None = None,
        on_end: Callable[[Brick, BrickResult], None] | None = None,
    ) -> PipelineResult:
        """Run every brick in order.

        Parameters
        ----------
        ctx : RunContext
        progress : bool
            Show a progress bar on stderr.
        completed : mapping, optional
            Results of bricks completed by an interrupted attempt in the same staging
            folder, by brick name: the resumable prefix is taken over, not rerun.
        on_start, on_end : callable, optional
            Called before (``(brick, index)``) and after (``(brick, result)``) each
            brick: the status file and the journal are updated there.
        """
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        result = PipelineResult(self.name)
        completed = completed or {}
        takeover = set(self.resumable_prefix(completed))
        failed_outputs: dict[str, str] = {}
        stop = False
        bar = tqdm(total=len(self.bricks), desc=self.name, unit="brick", file=sys.stderr,
                   disable=not progress, leave=True, dynamic_ncols=True)  # fmt: skip
        try:
            for index, brick in enumerate(self.bricks):
                bar.set_postfix_str(brick.name)
                if stop:
                    res = BrickResult(brick.name, BrickStatus.SKIPPED, critical=brick.critical)
                    res.warnings.append("not run: an earlier critical brick failed")
                elif brick.name in takeover:
                    res = self._take_over(ctx, brick, completed[brick.name])
                else:
                    missing = [p.name for p in brick.inputs if p.name in failed_outputs and not p.optional]
                    if missing:
                        res = BrickResult(brick.name, BrickStatus.SKIPPED, critical=brick.critical)
                        res.warnings.append(
                            "not run: input(s) " + ", ".join(f"{m} (brick {failed_outputs[m]} failed)" for m in missing)
                        )
                    else:
                        if on_start is not None:
                            on_start(brick, index)
                        res = brick.run(ctx)
                result.bricks.append(res)
                if on_end is not None:
                    on_end(brick, res)
                if res.status in (BrickStatus.FAILED, BrickStatus.SKIPPED):
                    failed_outputs.update({p.name: brick.name for p in brick.outputs})
                    if res.status is BrickStatus.FAILED and brick.critical:
                        stop = True
                bar.update(1)
                log.info("brick %s: %s in %.3f s", brick.name, res.status, res.elapsed_s)
        finally:
            bar.close()
            result.elapsed_s = time.perf_counter() - t0
        return result

    @staticmethod
    def _take_over(ctx: RunContext, brick: Brick, previous: BrickResult) -> BrickResult:
        """Reuse the outputs of a brick completed by an interrupted attempt."""
        by_port: dict[str, list] = {}
        for rec in previous.outputs:
            by_port.setdefault(rec.port, []).append(rec)
        for port in brick.outputs:
            ctx.values.pop(port.name, None)
            if port.name in by_port:
                ctx.records[port.name] = by_port[port.name]
        res = BrickResult.from_dict(previous.to_dict())
        res.resumed = True
        return res
