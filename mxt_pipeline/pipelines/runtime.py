"""The scheduler contract: ``runtime_data.json`` in, a :class:`RunRequest` out.

The processing centre's scheduler launches a pipeline with one JSON file holding the
``{target}`` structure (observation id, mode, burst id and position), the inputs, the
output folder, the service URLs and the one authentication token for every FSC
service (CaDBIO, the science database).  Its schema is
``mxt_pipeline/pipelines/runtime_data.schema.json`` (JSON Schema 2020-12, reproduced
in ``docs/pipelines.md``); :func:`load_runtime_data` checks a file against it and
reports *every* problem with the key path that holds it.

The token is read into a :class:`~mxt_pipeline.services.Secret` at once: it is handed
to the CALDB client and to the science-database client and appears in no log, report,
status file or error message.

``mxt run DATASET --pipeline ...`` builds the same :class:`RunRequest` from the command
line (:func:`request_from_dataset`), so both ways of launching a run share one code
path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from mxt_pipeline.errors import MXTFormatError, MXTInputError, MXTSchemaError
from mxt_pipeline.io.dataset_manifest import is_telemetry_manifest, read_manifest
from mxt_pipeline.pipelines.attitude_source import NO_ATTITUDE_HELP, needs_service_attitude
from mxt_pipeline.pipelines.schema_check import check, check_schema_keywords
from mxt_pipeline.services.attitude import resolve_attitude_url
from mxt_pipeline.services.tokens import Secret

__all__ = [
    "BurstPosition",
    "Target",
    "ObservationInputs",
    "ObservationInMemory",
    "RunRequest",
    "runtime_schema",
    "validate_runtime_data",
    "load_runtime_data",
    "request_from_dataset",
    "PIPELINE_OF_MODE",
]

#: The pipeline each observing mode is processed by (None: designed, not implemented).
PIPELINE_OF_MODE: dict[str, str | None] = {
    "XBAND-GP": "xband-gp",
    "XBAND-CP": "xband-cp",
    "X-VHF": None,
    "TOO-MM": None,
}
_MODE_OF_PIPELINE = {"xband-gp": "XBAND-GP", "xband-cp": "XBAND-CP"}


@cache
def runtime_schema() -> dict[str, Any]:
    """The JSON Schema of ``runtime_data.json`` (checked to use only supported keywords)."""
    text = resources.files("mxt_pipeline.pipelines").joinpath("runtime_data.schema.json").read_text("utf-8")
    schema = json.loads(text)
    check_schema_keywords(schema)
    return schema


# --------------------------------------------------------------------------------------
# The {target} structure
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BurstPosition:
    """Burst position of the trigger (deg, ICRS) with its 90% radius (arcmin)."""

    ra: float
    dec: float
    error_radius_arcmin: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ra": self.ra, "dec": self.dec, "error_radius_arcmin": self.error_radius_arcmin}


@dataclass(frozen=True)
class Target:
    """The ``{target}`` of a run: what is observed and in which mode.

    Attributes
    ----------
    obs_id : str
    mode : str
        ``XBAND-GP`` (general programme), ``XBAND-CP`` (core programme, GRB
        follow-up), ``X-VHF`` (alert stream), ``TOO-MM`` (multi-pointing ToO).
    object : str, optional
    burst_id : str, optional
    trigger_time : float, optional
        TT seconds since MJDREF.
    burst_position : BurstPosition, optional
    pointings : tuple of dict
        ToO-MM pointings (``obs_id``, ``ra``, ``dec``).
    """

    obs_id: str
    mode: str
    object: str | None = None
    burst_id: str | None = None
    trigger_time: float | None = None
    burst_position: BurstPosition | None = None
    pointings: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"obs_id": self.obs_id, "mode": self.mode}
        for key in ("object", "burst_id", "trigger_time"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.burst_position is not None:
            out["burst_position"] = self.burst_position.to_dict()
        if self.pointings:
            out["pointings"] = [dict(p) for p in self.pointings]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Target:
        bp = d.get("burst_position")
        return cls(
            obs_id=str(d["obs_id"]),
            mode=str(d["mode"]),
            object=d.get("object"),
            burst_id=d.get("burst_id"),
            trigger_time=None if d.get("trigger_time") is None else float(d["trigger_time"]),
            burst_position=None if bp is None else BurstPosition(
                float(bp["ra"]), float(bp["dec"]),
                None if bp.get("error_radius_arcmin") is None else float(bp["error_radius_arcmin"]),
            ),  # fmt: skip
            pointings=tuple(dict(p) for p in d.get("pointings", ())),
        )


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservationInputs:
    """The L1 inputs of a run, resolved to paths.

    Attributes
    ----------
    l1 : tuple of Path
        L1 raw files found (one per pass); empty for telemetry inputs.
    missing_l1 : tuple of Path
        L1 files listed but absent (a pass not delivered yet): the run goes on without
        them, the time they cover becomes a TELEMETRY gap and the run is PARTIAL.
    att, ang : Path
        Attitude and angle files (``ang`` may be None; ``att`` is None for telemetry
        inputs, whose attitude comes from the packets, and for a dataset whose manifest
        lists no ATT file (``files.att`` null), whose attitude comes from the attitude
        service).
    saa_dir : Path, optional
        Folder of the weekly SAA files (None: ask the science database).
    manifest : dict
        ``dataset.json`` (or the equivalent built from explicit files).
    dataset_dir : Path, optional
    telemetry : tuple of Path
        Packet files of the ground-station passes (CCSDS, docs/formats.md): when
        given, the run starts with the ``preprocess`` brick, which makes the L1 passes
        and the attitude from them (``l1`` is empty, ``att`` None).
    """

    l1: tuple[Path, ...]
    att: Path | None
    ang: Path | None = None
    saa_dir: Path | None = None
    missing_l1: tuple[Path, ...] = ()
    manifest: dict[str, Any] = field(default_factory=dict)
    dataset_dir: Path | None = None
    telemetry: tuple[Path, ...] = ()

    @property
    def from_telemetry(self) -> bool:
        """Whether the L1 passes and the attitude are to be decoded from telemetry packets."""
        return bool(self.telemetry)

    @classmethod
    def from_dataset(cls, dataset_dir: str | os.PathLike[str], *, telemetry: bool | None = None) -> ObservationInputs:
        """Resolve a dataset folder (``dataset.json``, see docs/pipelines.md).

        Parameters
        ----------
        dataset_dir : path-like
        telemetry : bool, optional
            Take the L1 passes and the attitude from the dataset's telemetry packets
            (True), from its L1 files (False), or decide from the content (None: a
            manifest with pass folders in ``files.telemetry`` and no L1 file is a
            telemetry dataset).

        Raises
        ------
        MXTInputError
            No manifest, an attitude or angle file listed but absent, or none of the
            listed L1 files exists; for telemetry, no pass folder or no packet file in one.
        MXTFormatError
            The manifest is not valid.
        """
        root = Path(dataset_dir).resolve()
        if not root.is_dir():
            raise MXTInputError("dataset folder not found", file=root)
        manifest = read_manifest(root)
        files = manifest["files"]
        where = root / "dataset.json"
        if telemetry is None:
            telemetry = is_telemetry_manifest(manifest)
        if telemetry:
            return cls._telemetry_dataset(root, manifest)
        l1_all = [root / f for f in files["l1"]]
        if not l1_all:
            raise MXTInputError("the manifest lists no L1 file", file=where, keyword="files.l1")
        # No ATT file listed: the run asks the attitude service (attitude_source.py).
        att = root / files["att"] if files.get("att") else None
        if att is not None and not att.is_file():
            raise MXTInputError("attitude file not found", file=att, keyword="files.att")
        ang = root / files["ang"] if files.get("ang") else None
        if ang is not None and not ang.is_file():
            raise MXTInputError("angle file not found", file=ang, keyword="files.ang")
        saa_dir = root / "saa"
        return cls._with_l1(l1_all, att, ang, saa_dir if saa_dir.is_dir() else None, manifest, root)

    @classmethod
    def _telemetry_dataset(cls, root: Path, manifest: dict[str, Any]) -> ObservationInputs:
        """The inputs of a telemetry dataset: packet files, angles, SAA folder, manifest."""
        # lazy: spacepackets/fastcrc load only for telemetry datasets, never for an L1 run (#18)
        from mxt_pipeline.io.telemetry_stream import dataset_packet_files

        files = manifest["files"]
        packets = tuple(p.resolve() for p in dataset_packet_files(root, manifest))
        ang = root / files["ang"] if files.get("ang") else None
        if ang is not None and not ang.is_file():
            raise MXTInputError("angle file not found", file=ang, keyword="files.ang")
        saa_dir = root / "saa"
        return cls((), None, ang, saa_dir if saa_dir.is_dir() else None, (), manifest, root, packets)

    @classmethod
    def from_files(
        cls,
        l1: Sequence[str | os.PathLike[str]],
        att: str | os.PathLike[str] | None,
        ang: str | os.PathLike[str] | None = None,
        saa_dir: str | os.PathLike[str] | None = None,
        *,
        obs_id: str,
        object_name: str | None = None,
        tstart: float | None = None,
        tstop: float | None = None,
        trigger_time: float | None = None,
    ) -> ObservationInputs:
        """Resolve inputs given file by file (``runtime_data.json`` without a dataset;
        ``att`` None: the attitude service)."""
        att_p = None if att is None else Path(att).resolve()
        if att_p is not None and not att_p.is_file():
            raise MXTInputError("attitude file not found", file=att_p, keyword="inputs.att")
        ang_p = None if ang is None else Path(ang).resolve()
        if ang_p is not None and not ang_p.is_file():
            raise MXTInputError("angle file not found", file=ang_p, keyword="inputs.ang")
        saa_p = None if saa_dir is None else Path(saa_dir).resolve()
        if saa_p is not None and not saa_p.is_dir():
            raise MXTInputError("SAA folder not found", file=saa_p, keyword="inputs.saa_dir")
        manifest = {
            "obs_id": obs_id, "object": object_name, "ra_nom": None, "dec_nom": None,
            "tstart": tstart, "tstop": tstop, "trigger_time": trigger_time,
            "files": {"l1": [str(p) for p in l1], "att": None if att_p is None else str(att_p),
                      "ang": None if ang_p is None else str(ang_p)},
        }  # fmt: skip
        return cls._with_l1([Path(p).resolve() for p in l1], att_p, ang_p, saa_p, manifest, None)

    @classmethod
    def _with_l1(cls, l1_all, att, ang, saa_dir, manifest, root) -> ObservationInputs:
        present = tuple(p for p in l1_all if p.is_file())
        missing = tuple(p for p in l1_all if not p.is_file())
        if not present:
            raise MXTInputError(
                f"none of the {len(l1_all)} L1 file(s) listed exists", file=l1_all[0], keyword="files.l1"
            )
        return cls(present, att, ang, saa_dir, missing, manifest, root)

    def files(self) -> list[tuple[str, Path]]:
        """Every input file as ``(role, path)``: what the run key and the manifest hash."""
        out = [("telemetry", p) for p in self.telemetry] + [("l1", p) for p in self.l1]
        if self.att is not None:
            out.append(("att", self.att))
        if self.ang is not None:
            out.append(("ang", self.ang))
        if self.saa_dir is not None:
            out += [("saa", p) for p in sorted(self.saa_dir.glob("mxt_saa_w*.fits"))]
        if self.dataset_dir is not None:
            out.append(("manifest", self.dataset_dir / "dataset.json"))
        return out

    def port_files(self) -> dict[str, Any]:
        """Files of the X-band input ports: ``l1_passes`` (by file stem), ``attitude``, ``angles``;
        for telemetry inputs ``telemetry`` instead of the first two, keyed ``<pass folder>/<file stem>``
        (a pass re-dumped into another folder holds a file of the same name: both are read)."""
        ports: dict[str, Any]
        if self.from_telemetry:
            ports = {"telemetry": {f"{p.parent.name}/{p.stem}": p for p in self.telemetry}}
        else:
            ports = {"l1_passes": {p.stem: p for p in self.l1}}
            if self.att is not None:
                ports["attitude"] = self.att
        if self.ang is not None:
            ports["angles"] = self.ang
        return ports

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": None if self.dataset_dir is None else str(self.dataset_dir),
            "l1": [str(p) for p in self.l1],
            "missing_l1": [str(p) for p in self.missing_l1],
            "att": None if self.att is None else str(self.att),
            "ang": None if self.ang is None else str(self.ang),
            "saa_dir": None if self.saa_dir is None else str(self.saa_dir),
            "tstart": self.manifest.get("tstart"),
            "tstop": self.manifest.get("tstop"),
            # Only for telemetry inputs: the description of an L1 run stays as it was.
            **({"telemetry": [str(p) for p in self.telemetry]} if self.telemetry else {}),
        }


@dataclass(frozen=True)
class ObservationInMemory:
    """An observation whose L1 passes, attitude, angles and SAA intervals are already
    in memory (a simulated observation of a campaign): only its manifest is needed.

    It stands for :class:`ObservationInputs` at the ``observation`` port of the
    ``calibrate`` brick; the data themselves are given to the brick's other ports.

    Attributes
    ----------
    manifest : dict
        The keys of ``dataset.json`` the calibration uses: ``obs_id``, ``object``,
        ``ra_nom``, ``dec_nom``, ``tstart``, ``tstop``.
    """

    manifest: dict[str, Any]
    missing_l1: tuple[Path, ...] = ()
    saa_dir: Path | None = None

    def port_files(self) -> dict[str, Any]:
        """No file: the brick's input ports are given in memory."""
        return {}


# --------------------------------------------------------------------------------------
# The request
# --------------------------------------------------------------------------------------


@dataclass
class RunRequest:
    """Everything one pipeline run needs (from ``runtime_data.json`` or the command line).

    ``token`` is a :class:`~mxt_pipeline.services.Secret`; ``caldb`` is a local CALDB
    root, a CaDBIO client, a provider or a calibration set (see
    :func:`~mxt_pipeline.pipelines.caldb_bundle.provider_from`), or None for the
    defaults.
    """

    pipeline: str
    target: Target
    inputs: ObservationInputs
    output_dir: Path
    token: Secret | None = None
    caldb_url: str | None = None
    sdb_url: str | None = None
    max_tries: int = 5
    caldb: Any = None
    attitude_url: str | None = None
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    force: bool = False
    progress: bool = False
    source: Path | None = None

    def __repr__(self) -> str:  # the token is a Secret, but say so explicitly
        return (
            f"RunRequest(pipeline={self.pipeline!r}, obs_id={self.target.obs_id!r}, "
            f"output_dir={str(self.output_dir)!r}, token={'***' if self.token else None})"
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready description without the token (manifests, reports)."""
        caldb = self.caldb if isinstance(self.caldb, (str, os.PathLike)) else (
            None if self.caldb is None else type(self.caldb).__name__
        )  # fmt: skip
        return {
            "pipeline": self.pipeline,
            "target": self.target.to_dict(),
            "inputs": self.inputs.to_dict(),
            "output_dir": str(self.output_dir),
            "services": {"caldb_url": self.caldb_url, "sdb_url": self.sdb_url, "max_tries": self.max_tries,
                         **({"attitude_url": self.attitude_url} if self.attitude_url else {})},
            "caldb": None if caldb is None else str(caldb),
            "parameters": self.parameters,
            "token_given": self.token is not None,
        }


def validate_runtime_data(data: Any, *, file: str | os.PathLike[str] | None = None) -> None:
    """Check runtime data against the schema and the cross-field rules.

    Raises
    ------
    MXTSchemaError
        Listing every problem with its key path; ``keyword`` is the first path.
    """
    problems = [str(p) for p in check(data, runtime_schema())]
    if not problems:
        mode = data["target"]["mode"]
        expected = _MODE_OF_PIPELINE[data["pipeline"]]
        if mode in PIPELINE_OF_MODE and PIPELINE_OF_MODE[mode] is None:
            problems.append(
                f"target.mode: mode {mode} is designed (docs/pipelines.md) but has no pipeline yet"
            )
        elif mode != expected:
            problems.append(f"target.mode: {mode} does not match pipeline {data['pipeline']} (expects {expected})")
    if problems:
        first = problems[0].split(":", 1)[0]
        raise MXTSchemaError(
            f"runtime data: {len(problems)} problem(s)", problems, file=file, keyword=first
        )


def _resolve(base: Path, value: str) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else base / p


def load_runtime_data(path: str | os.PathLike[str]) -> RunRequest:
    """Read, check and resolve ``runtime_data.json``.

    Relative paths are taken relative to the file's folder.

    Raises
    ------
    MXTInputError
        The file is missing or not JSON (the message never quotes the file's text:
        it may hold the token).
    MXTSchemaError
        The content breaks the schema (every problem listed with its key path).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MXTInputError("runtime data file not found", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MXTInputError(f"runtime data file cannot be read ({type(exc).__name__})", file=path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MXTFormatError(f"not valid JSON at line {exc.lineno} column {exc.colno}", file=path) from None
    validate_runtime_data(data, file=path)
    base = path.resolve().parent
    target = Target.from_dict(data["target"])
    spec = data["inputs"]
    if "dataset" in spec:
        inputs = ObservationInputs.from_dataset(_resolve(base, spec["dataset"]))
        if str(inputs.manifest.get("obs_id")) != target.obs_id:
            raise MXTInputError(
                f"target.obs_id {target.obs_id!r} differs from the dataset's obs_id "
                f"{inputs.manifest.get('obs_id')!r}", file=path, keyword="target.obs_id",
            )  # fmt: skip
    else:
        inputs = ObservationInputs.from_files(
            [_resolve(base, p) for p in spec["l1"]],
            None if "att" not in spec else _resolve(base, spec["att"]),
            None if "ang" not in spec else _resolve(base, spec["ang"]),
            None if "saa_dir" not in spec else _resolve(base, spec["saa_dir"]),
            obs_id=target.obs_id, object_name=target.object,
            tstart=spec.get("tstart"), tstop=spec.get("tstop"), trigger_time=target.trigger_time,
        )  # fmt: skip
    services = data.get("services", {})
    options = data.get("options", {})
    if inputs.saa_dir is None and not services.get("sdb_url"):
        raise MXTInputError(
            "no SAA source: give inputs.saa_dir (or a dataset with saa/) or services.sdb_url",
            file=path, keyword="services.sdb_url",
        )  # fmt: skip
    attitude_url = _attitude_source(inputs, services.get("attitude_url"), path)
    token = data.get("token")
    return RunRequest(
        pipeline=data["pipeline"],
        target=target,
        inputs=inputs,
        output_dir=_resolve(base, data["output_dir"]),
        # Present means meant: a blank or malformed token is refused by name here,
        # not sent as a header that fails like an unreachable service.
        token=None if token is None else Secret(token, source=f"key 'token' of {path.name}"),
        caldb_url=services.get("caldb_url"),
        sdb_url=services.get("sdb_url"),
        max_tries=int(services.get("max_tries", 5)),
        caldb=None if "caldb" not in data else _resolve(base, data["caldb"]),
        attitude_url=attitude_url,
        parameters={k: dict(v) for k, v in data.get("parameters", {}).items()},
        force=bool(options.get("force", False)),
        progress=bool(options.get("progress", False)),
        source=path,
    )


def _attitude_source(inputs: ObservationInputs, url: str | None, file: Path | None = None) -> str | None:
    """The attitude service URL of a run (given, else ``$MXT_ATTITUDE_URL``); refuse
    inputs with neither an ATT file nor a service to ask."""
    resolved = resolve_attitude_url(url)
    if resolved is None and needs_service_attitude(inputs):
        raise MXTInputError(f"no attitude source: {NO_ATTITUDE_HELP}", file=file, keyword="services.attitude_url")
    return resolved


def request_from_dataset(
    dataset_dir: str | os.PathLike[str],
    pipeline: str,
    output_dir: str | os.PathLike[str],
    *,
    burst_position: BurstPosition | None = None,
    burst_id: str | None = None,
    token: str | Secret | None = None,
    caldb: Any = None,
    caldb_url: str | None = None,
    sdb_url: str | None = None,
    max_tries: int = 5,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    force: bool = False,
    progress: bool = False,
    telemetry: bool | None = None,
    attitude_url: str | None = None,
) -> RunRequest:
    """The request of ``mxt run DATASET --pipeline ... --out DIR``.

    The target comes from ``dataset.json`` (obs_id, object, trigger_time); the mode
    from the pipeline.  ``telemetry``: run on the dataset's telemetry packets (True,
    ``--from-telemetry``), on its L1 files (False), or as its content says (None; see
    :meth:`ObservationInputs.from_dataset`); with telemetry the pipeline starts with
    the ``preprocess`` brick.  ``attitude_url`` (else ``$MXT_ATTITUDE_URL``): the attitude
    service, asked when the dataset lists no ATT file.
    """
    if pipeline not in _MODE_OF_PIPELINE:
        raise MXTInputError(f"unknown pipeline {pipeline!r}; known: {sorted(_MODE_OF_PIPELINE)}", keyword="pipeline")
    inputs = ObservationInputs.from_dataset(dataset_dir, telemetry=telemetry)
    attitude_url = _attitude_source(inputs, attitude_url, Path(dataset_dir) / "dataset.json")
    m = inputs.manifest
    target = Target(
        obs_id=str(m["obs_id"]),
        mode=_MODE_OF_PIPELINE[pipeline],
        object=m.get("object"),
        burst_id=burst_id,
        trigger_time=None if m.get("trigger_time") is None else float(m["trigger_time"]),
        burst_position=burst_position,
    )
    if isinstance(token, str):
        token = Secret(token) if token.strip() else None
    return RunRequest(
        pipeline=pipeline, target=target, inputs=inputs, output_dir=Path(output_dir), token=token,
        caldb=caldb, caldb_url=caldb_url, sdb_url=sdb_url, max_tries=max_tries, attitude_url=attitude_url,
        parameters={k: dict(v) for k, v in (parameters or {}).items()}, force=force, progress=progress,
    )  # fmt: skip
