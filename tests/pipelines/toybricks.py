"""A small pipeline of real computations on arrays, to test the brick framework.

``toy`` mirrors the shape of the X-band pipelines: the first brick merges the "passes"
(``.npy`` arrays listed as the L1 files of an :class:`ObservationInputs`), the second
histograms them with a gain from a CALDB file, the third turns counts into a density,
the last (non-critical) writes a text summary.  Every core is a pure function whose
result the tests check against numpy directly.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
from pathlib import Path

import numpy as np

from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io.fits import atomic_write_bytes
from mxt_pipeline.pipelines import Brick, Codec, CoreResult, Parameter, Pipeline, Port
from mxt_pipeline.pipelines.caldb_bundle import FileProvider
from mxt_pipeline.pipelines.ports import MEMORY, json_codec, text_codec
from mxt_pipeline.pipelines.runtime import ObservationInputs, RunRequest, Target

TOKEN = "tok-3c9e1f7a-TOY-secret-55d"


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


def write_npy(path: Path, value, naming) -> None:
    atomic_write_bytes(path, _npy_bytes(value))


def read_npy(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


NPY = Codec("npy", "samples_{obs_id}.npy", write_npy, read_npy)


def read_observation(path: Path) -> ObservationInputs:
    raise AssertionError("not used")


# ---- cores -----------------------------------------------------------------------------


def merge_core(inputs, params, cal):
    obs: ObservationInputs = inputs["observation"]
    arrays = [np.load(p, allow_pickle=False) for p in obs.l1]
    if params.fail_with:
        raise MXTInputError(params.fail_with, file=obs.l1[0])
    merged = np.sort(np.concatenate(arrays)) if arrays else np.zeros(0)
    return CoreResult({"samples": merged}, no_data=merged.size == 0, metrics={"n_samples": int(merged.size)})


def histogram_core(inputs, params, cal):
    x = np.asarray(inputs["samples"], dtype=float) * float(cal.gain["factor"])
    counts, edges = np.histogram(x, bins=params.bins, range=(params.lo, params.hi))
    out = {"edges": edges, "counts": counts, "n_total": int(x.size)}
    return CoreResult({"histogram": out}, no_data=x.size == 0, metrics={"n_in_range": int(counts.sum())})


def density_core(inputs, params, cal):
    h = inputs["histogram"]
    edges = np.asarray(h["edges"], float)
    counts = np.asarray(h["counts"], float)
    total = counts.sum()
    dens = counts / (total * np.diff(edges)) if total > 0 else np.zeros_like(counts)
    hook = os.environ.get("TOY_KILL_IN")
    if hook == "density":
        os.kill(os.getpid(), signal.SIGKILL)
    if hook == "density-sleep":
        Path(os.environ["TOY_READY_FILE"]).write_text("ready")
        time.sleep(60)
    return {"density": {"edges": edges, "density": dens}}


def summary_core(inputs, params, cal):
    if params.fail:
        raise RuntimeError("summary failed on purpose")
    d = inputs["density"]
    e = np.asarray(d["edges"])
    p = np.asarray(d["density"])
    mode = 0.5 * (e[:-1] + e[1:])[int(np.argmax(p))] if p.size and p.max() > 0 else float("nan")
    return {"summary": f"bins: {p.size}\nmode: {mode:.6g}\nintegral: {float(np.sum(p * np.diff(e))):.6g}\n"}


def _write_density_then_die(path: Path, value, naming) -> None:
    """A writer killed half way: the temporary file is written, the rename never happens."""
    tmp = path.with_name("." + path.name + ".partial.tmp")
    tmp.write_bytes(b'{"half": ')
    os.kill(os.getpid(), signal.SIGKILL)


def build_toy(*, kill_while_writing: bool = False, early_density: bool = False) -> Pipeline:
    density_codec = json_codec("density_{obs_id}.json", role="product")
    if kill_while_writing:
        density_codec = Codec("json", "density_{obs_id}.json", _write_density_then_die, json.loads)
    merge = Brick(
        "merge", "merge the passes and sort", merge_core,
        inputs=(Port("observation", MEMORY, "the L1 inputs"),),
        outputs=(Port("samples", NPY, "merged samples"),),
        params=(Parameter("fail_with", str, "", "raise MXTInputError with this message when not empty"),),
    )  # fmt: skip
    hist = Brick(
        "histogram", "histogram with a CALDB gain", histogram_core,
        inputs=(Port("samples", NPY, "samples"),),
        outputs=(Port("histogram", json_codec("histogram_{obs_id}.json", role="product"), "counts and edges"),),
        params=(
            Parameter("bins", int, 8, "number of bins", minimum=1, maximum=10000),
            Parameter("lo", float, 0.0, "lower edge"),
            Parameter("hi", float, 10.0, "upper edge"),
        ),
        caldb=("GAIN",),
    )  # fmt: skip
    dens = Brick(
        "density", "probability density", density_core,
        inputs=(Port("histogram", json_codec("histogram_{obs_id}.json"), "counts"),),
        outputs=(Port("density", density_codec, "density"),),
        early=early_density,
    )  # fmt: skip
    summ = Brick(
        "summary", "text summary", summary_core,
        inputs=(Port("density", json_codec("density_{obs_id}.json"), "density"),),
        outputs=(Port("summary", text_codec("summary_{obs_id}.txt", role="preview"), "summary"),),
        params=(Parameter("fail", bool, False, "fail on purpose"),),
        critical=False,
    )  # fmt: skip
    return Pipeline("toy", [merge, hist, dens, summ], external=("observation", "target"), summary="toy")


def gain_loader(code: str, path: Path) -> dict:
    return json.loads(Path(path).read_text())


def make_caldb(folder: Path, factor: float = 1.0) -> FileProvider:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gain.json"
    path.write_text(json.dumps({"factor": factor}))
    return FileProvider({"GAIN": path}, loader=gain_loader)


def make_observation(folder: Path, n_passes: int = 3, seed: int = 1, missing: int = 0, empty: bool = False):
    """Passes as .npy arrays (normal samples), an 'attitude' file, a manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    l1 = []
    for k in range(n_passes):
        p = folder / f"pass_{k:02d}.npy"
        data = np.zeros(0) if empty else rng.normal(5.0, 1.5, size=400 + 50 * k)
        p.write_bytes(_npy_bytes(data))
        l1.append(p)
    for k in range(missing):
        l1.append(folder / f"pass_missing_{k:02d}.npy")
    att = folder / "att.bin"
    att.write_bytes(b"attitude")
    saa = folder / "saa"
    saa.mkdir(exist_ok=True)
    return ObservationInputs.from_files(l1, att, saa_dir=saa, obs_id="00000042", tstart=3.0e8, tstop=3.0e8 + 1e4)


def make_request(obs: ObservationInputs, out: Path, caldb, **kw) -> RunRequest:
    return RunRequest(
        pipeline="toy",
        target=Target(obs_id="00000042", mode="XBAND-GP", object="TOY"),
        inputs=obs,
        output_dir=out,
        caldb=caldb,
        **kw,
    )


def observation_from(folder: Path) -> ObservationInputs:
    """The observation written by :func:`make_observation` in ``folder``."""
    return ObservationInputs.from_files(sorted(folder.glob("pass_*.npy")), folder / "att.bin", saa_dir=folder / "saa",
                                        obs_id="00000042", tstart=3.0e8, tstop=3.0e8 + 1e4)  # fmt: skip
