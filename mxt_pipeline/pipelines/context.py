"""The run context: the data, files, parameters and calibration shared by the bricks of a run.

Bricks never talk to each other directly.  Each reads its inputs from the context
(in memory when an earlier brick of the same run produced them, from files otherwise)
and leaves its outputs there, with the records of the files it wrote.  A brick run
alone (:meth:`~mxt_pipeline.pipelines.brick.Brick.run_standalone`) gets a context of
its own filled with the files given on the command line or by a test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mxt_pipeline.errors import MXTCaldbNotFound
from mxt_pipeline.pipelines.caldb_bundle import CaldbFile, CalibrationBundle, CalibrationProvider
from mxt_pipeline.pipelines.ports import FileRecord, file_record

__all__ = ["RunContext"]


@dataclass
class RunContext:
    """State of one run shared by its bricks.

    Attributes
    ----------
    out_dir : Path
        Where outputs are written (the staging folder of the collection).
    naming : dict
        Fields of the output file names (``obs_id``, ...).
    values : dict
        In-memory data by port name.
    records : dict
        Files behind each port: absolute paths for inputs from outside the run, paths
        relative to ``out_dir`` for outputs of the run.
    parameters : dict
        Parameter overrides per brick name.
    calibration : CalibrationProvider, optional
    obs_date : datetime, optional
        Date for the CALDB selection (None: now).
    caldb_files : dict
        Calibration files already resolved, by code name.
    input_warnings : dict
        Problems met while gathering the files of an input port (a missing pass):
        the brick reading that port reports them and ends DEGRADED.
    services : dict
        Service settings for the I/O shells (``token``: a Secret, ``sdb_url``, ...).
    target : object, optional
        The ``{target}`` of the run (:class:`~mxt_pipeline.pipelines.runtime.Target`).
    on_early_outputs : callable, optional
        Called with ``(brick, records)`` when a brick flagged ``early`` has written its
        outputs (fast products of XBAND-CP).
    check_products : bool
        Check every FITS product as soon as it is written: its format's schema
        (``mxt validate``) and, when installed, ``fitsverify``.  A product that fails
        is deleted and its brick FAILED (phase ``outputs``): it is never published.
    input_digests : dict
        (SHA-256, size) of the run's input files by absolute path, hashed once for the
        run key; file records of those files reuse them.
    persist : bool
        Write the outputs to files (True); False keeps them in memory only (a
        Monte-Carlo study reading the values of thousands of runs).
    """

    out_dir: Path
    naming: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    records: dict[str, list[FileRecord]] = field(default_factory=dict)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    calibration: CalibrationProvider | None = None
    obs_date: datetime | None = None
    caldb_files: dict[str, CaldbFile] = field(default_factory=dict)
    input_warnings: dict[str, list[str]] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    target: Any = None
    on_early_outputs: Callable[[Any, list[FileRecord]], None] | None = None
    check_products: bool = True
    input_digests: dict[str, tuple[str, int]] = field(default_factory=dict)
    persist: bool = True

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)

    # ---- files ---------------------------------------------------------------------
    def provide_files(
        self,
        port: str,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Mapping[str, str | os.PathLike[str]],
        *,
        kind: str = "",
        known: Mapping[str, tuple[str, int]] | None = None,
    ) -> list[FileRecord]:
        """Declare input files for ``port`` (hashed now; read when a brick needs them).

        A sequence or mapping declares a *many* input: keys are the mapping's keys, or
        the file stems for a sequence.  ``known``: (SHA-256, size) of files already
        hashed, by absolute path (default :attr:`input_digests`; not hashed again).
        """
        known = self.input_digests if known is None else known
        if isinstance(paths, (str, os.PathLike)):
            items: Iterable[tuple[str | None, Any]] = [(None, paths)]
        elif isinstance(paths, Mapping):
            items = [(str(k), v) for k, v in paths.items()]
        else:
            items = [(Path(p).stem, p) for p in paths]
        recs = [file_record(port, p, key=k, kind=kind, role="input", known=known) for k, p in items]
        self.records[port] = recs
        self.values.pop(port, None)
        return recs

    def path_of(self, record: FileRecord) -> Path:
        """Absolute path of a record (outputs are relative to ``out_dir``)."""
        p = Path(record.path)
        return p if p.is_absolute() else self.out_dir / p

    # ---- calibration -----------------------------------------------------------------
    def resolve_calibration(self, codes: Iterable[str]) -> dict[str, CaldbFile]:
        """Resolve the code names not resolved yet (all at once) and return them all."""
        wanted = sorted({c.upper() for c in codes} - set(self.caldb_files))
        if wanted:
            if self.calibration is None:
                raise MXTCaldbNotFound(f"no calibration source for {wanted}", keyword=wanted[0])
            self.caldb_files.update(self.calibration.resolve(wanted, self.obs_date))
        return {c.upper(): self.caldb_files[c.upper()] for c in codes}

    def bundle(self, codes: Iterable[str]) -> CalibrationBundle:
        """The models of ``codes`` for a brick's core (resolving them when needed)."""
        codes = list(codes)
        if not codes:
            return CalibrationBundle({})
        files = self.resolve_calibration(codes)
        assert self.calibration is not None
        models = {code: self.calibration.load(f) for code, f in files.items()}
        return CalibrationBundle(models, files)
