"""A brick alone: inputs from files or memory, parameters, CALDB, outputs with checksums."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from mxt_pipeline.errors import MXTCaldbNotFound, MXTInputError, MXTPipelineError
from mxt_pipeline.pipelines import Brick, BrickStatus, Port
from mxt_pipeline.pipelines.caldb_bundle import (
    CalibrationBundle,
    FileProvider,
    ObjectProvider,
    caldb_version,
)
from mxt_pipeline.pipelines.ports import MEMORY, json_codec

from .toybricks import NPY, _npy_bytes, gain_loader, make_caldb


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def samples_file(tmp_path):
    rng = np.random.default_rng(7)
    x = rng.normal(4.0, 2.0, 1000)
    p = tmp_path / "in" / "samples.npy"
    p.parent.mkdir()
    p.write_bytes(_npy_bytes(x))
    return p, x


def test_standalone_from_files_matches_numpy(toy, samples_file, tmp_path):
    path, x = samples_file
    caldb = make_caldb(tmp_path / "caldb", factor=1.5)
    hist = toy.brick("histogram")
    res = hist.run_standalone({"samples": path}, {"bins": "20", "hi": 12}, tmp_path / "out", caldb=caldb)
    assert res.status is BrickStatus.SUCCESS
    counts, edges = np.histogram(1.5 * x, bins=20, range=(0.0, 12.0))
    written = tmp_path / "out" / "histogram_standalone.json"
    doc = json.loads(written.read_text())
    assert doc["counts"] == counts.tolist()
    np.testing.assert_allclose(doc["edges"], edges)
    # Records: the input and the output with their real checksums, the CALDB file too.
    assert [r.sha256 for r in res.inputs] == [_sha(path)]
    assert res.outputs[0].path == "histogram_standalone.json"
    assert res.outputs[0].sha256 == _sha(written)
    assert res.caldb[0]["code"] == "GAIN" and res.caldb[0]["sha256"] == _sha(tmp_path / "caldb" / "gain.json")
    assert res.params == {"bins": 20, "lo": 0.0, "hi": 12.0}
    assert res.metrics["n_in_range"] == int(counts.sum())
    assert set(res.phase_s) == {"parameters", "inputs", "caldb", "core", "outputs"}


def test_standalone_in_memory_gives_the_same_bytes(toy, samples_file, tmp_path):
    path, x = samples_file
    caldb = make_caldb(tmp_path / "caldb", factor=1.0)
    hist = toy.brick("histogram")
    a = hist.run_standalone({"samples": path}, out_dir=tmp_path / "a", caldb=caldb)
    b = hist.run_standalone({"samples": x}, out_dir=tmp_path / "b", caldb=caldb)
    assert a.outputs[0].sha256 == b.outputs[0].sha256


def test_obs_id_names_the_files(toy, tmp_path):
    dens = toy.brick("density")
    h = {"edges": [0.0, 1.0, 3.0], "counts": [2, 6]}
    res = dens.run_standalone({"histogram": h}, out_dir=tmp_path, naming={"obs_id": "01234567"})
    doc = json.loads((tmp_path / "density_01234567.json").read_text())
    # Density: counts / (N * width); integrates to one.
    np.testing.assert_allclose(doc["density"], [2 / 8, 6 / 16])
    assert res.values["density"]["density"].sum() == pytest.approx(0.25 + 0.375)


def test_failures_are_recorded_with_their_phase(toy, samples_file, tmp_path):
    path, _ = samples_file
    hist = toy.brick("histogram")
    # Parameter phase: a bad value.
    res = hist.run_standalone({"samples": path}, {"bins": 0}, tmp_path, caldb=make_caldb(tmp_path / "c"), raise_on_error=False)
    assert res.status is BrickStatus.FAILED and res.error.phase == "parameters"
    assert isinstance(res.exception, MXTInputError) and res.error.keyword == "histogram.bins"
    # CALDB phase: the code name is not available.
    empty = FileProvider({}, loader=gain_loader)
    res = hist.run_standalone({"samples": path}, {}, tmp_path, caldb=empty, raise_on_error=False)
    assert res.error.phase == "caldb" and isinstance(res.exception, MXTCaldbNotFound)
    # Inputs phase: a missing input is a wiring error.
    with pytest.raises(MXTPipelineError, match="samples"):
        hist.run_standalone({}, {}, tmp_path, caldb=make_caldb(tmp_path / "c"))


def test_core_output_contract_is_enforced(tmp_path):
    def undeclared(inputs, params, cal):
        return {"x": 1, "y": 2}

    def missing(inputs, params, cal):
        return {}

    out = Port("x", json_codec("x.json"), "x")
    for core in (undeclared, missing):
        brick = Brick("b", "b", core, outputs=(out,))
        res = brick.run_standalone({}, out_dir=tmp_path, raise_on_error=False)
        assert res.status is BrickStatus.FAILED and res.error.phase == "outputs"
    with pytest.raises(ValueError, match="duplicate"):
        Brick("b", "b", missing, outputs=(out, out))


def test_many_outputs_one_file_per_key(tmp_path):
    def split(inputs, params, cal):
        x = np.asarray(inputs["samples"])
        return {"parts": {str(k): {"sum": float(part.sum())} for k, part in enumerate(np.array_split(x, 3), start=1)}}

    brick = Brick("split", "split", split, inputs=(Port("samples", NPY, "x"),),
                  outputs=(Port("parts", json_codec("part_{obs_id}_src{key}.json", many=True), "parts"),))  # fmt: skip
    res = brick.run_standalone({"samples": np.arange(9.0)}, out_dir=tmp_path, naming={"obs_id": "7"})
    assert sorted(r.path for r in res.outputs) == ["part_7_src1.json", "part_7_src2.json", "part_7_src3.json"]
    assert json.loads((tmp_path / "part_7_src3.json").read_text()) == {"sum": 6.0 + 7.0 + 8.0}
    assert [r.key for r in res.outputs] == ["1", "2", "3"]


def test_memory_inputs_cannot_come_from_files(tmp_path):
    brick = Brick("b", "b", lambda i, p, c: {}, inputs=(Port("obs", MEMORY, "x"),))
    (tmp_path / "f").write_text("x")
    res = brick.run_standalone({"obs": tmp_path / "f"}, out_dir=tmp_path, raise_on_error=False)
    assert res.status is BrickStatus.FAILED and "cannot be read" in res.error.message


def test_bundle_and_providers(tmp_path):
    b = CalibrationBundle({"TELDEF": 1, "psf": 2})
    assert b.teldef == 1 and b.psf == 2 and b.cti is None and "PSF" in b and b.codes == ["PSF", "TELDEF"]

    class CalSet:
        teldef = "T"

    prov = ObjectProvider(CalSet())
    files = prov.resolve(["teldef"], None)
    assert prov.load(files["TELDEF"]) == "T"
    with pytest.raises(MXTCaldbNotFound):
        prov.resolve(["PSF"], None)


def test_caldb_version_changes_with_any_file(tmp_path):
    p1 = make_caldb(tmp_path / "a", factor=1.0)
    p2 = make_caldb(tmp_path / "b", factor=1.0)
    p3 = make_caldb(tmp_path / "c", factor=1.01)
    v = [caldb_version(p.resolve(["GAIN"], None).values()) for p in (p1, p2, p3)]
    assert v[0] == v[1] != v[2]
    assert v[0].startswith("00000000-")


def test_an_interrupt_wrapped_by_compiled_code_stays_an_interrupt(tmp_path):
    """numba turns a KeyboardInterrupt raised in a callback into SystemError: still an interrupt."""
    from mxt_pipeline.pipelines.status import Interrupted

    def core(inputs, params, cal):
        try:
            raise Interrupted(15)
        except Interrupted as exc:
            raise SystemError("returned a result with an exception set") from exc

    brick = Brick("b", "b", core)
    with pytest.raises(Interrupted):
        brick.run_standalone({}, out_dir=tmp_path)
