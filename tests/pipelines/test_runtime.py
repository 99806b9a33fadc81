"""runtime_data.json: schema, key paths in errors, the token kept secret."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.errors import MXTError, MXTFormatError, MXTInputError, MXTSchemaError
from mxt_pipeline.pipelines.runtime import (
    BurstPosition,
    ObservationInputs,
    load_runtime_data,
    request_from_dataset,
    runtime_schema,
    validate_runtime_data,
)
from mxt_pipeline.pipelines.schema_check import check

from .toybricks import TOKEN


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data" / "obs1"
    for sub in ("l1", "aux", "saa"):
        (root / sub).mkdir(parents=True)
    for name in ("l1/mxt_l1_raw_0001_p01.fits", "l1/mxt_l1_raw_0001_p02.fits", "aux/mxt_att_0001.fits", "aux/mxt_ang_0001.fits"):
        (root / name).write_bytes(b"x")
    manifest = {
        "obs_id": "0001", "object": "GRB 250101A", "ra_nom": 10.0, "dec_nom": -20.0, "roll_nom": 0.0,
        "tstart": 3.0e8, "tstop": 3.0e8 + 1e4, "trigger_time": 3.0e8 - 100.0,
        "files": {"l1": ["l1/mxt_l1_raw_0001_p01.fits", "l1/mxt_l1_raw_0001_p02.fits", "l1/mxt_l1_raw_0001_p03.fits"],
                  "att": "aux/mxt_att_0001.fits", "ang": "aux/mxt_ang_0001.fits", "saa": []},
    }  # fmt: skip
    (root / "dataset.json").write_text(json.dumps(manifest))
    return root


def valid_doc() -> dict:
    return {
        "schema_version": 1,
        "pipeline": "xband-cp",
        "target": {
            "obs_id": "0001", "mode": "XBAND-CP", "object": "GRB 250101A", "burst_id": "sb25010101",
            "trigger_time": 3.0e8 - 100.0, "burst_position": {"ra": 10.01, "dec": -20.02, "error_radius_arcmin": 8.0},
        },
        "inputs": {"dataset": "data/obs1"},
        "output_dir": "out",
        "token": TOKEN,
        "services": {"caldb_url": "http://caldb.example:8080", "max_tries": 4},
        "parameters": {"detect": {"det_ml_threshold": 12}},
        "options": {"force": False, "progress": False},
    }  # fmt: skip


def _write(tmp_path, doc) -> object:
    p = tmp_path / "runtime_data.json"
    p.write_text(json.dumps(doc))
    return p


def test_load_valid(tmp_path, dataset):
    req = load_runtime_data(_write(tmp_path, valid_doc()))
    assert req.pipeline == "xband-cp" and req.target.burst_id == "sb25010101"
    assert req.target.burst_position == BurstPosition(10.01, -20.02, 8.0)
    assert req.output_dir == tmp_path / "out"  # relative to the runtime data file
    assert req.inputs.dataset_dir == (tmp_path / "data" / "obs1").resolve()
    assert [p.name for p in req.inputs.l1] == ["mxt_l1_raw_0001_p01.fits", "mxt_l1_raw_0001_p02.fits"]
    assert [p.name for p in req.inputs.missing_l1] == ["mxt_l1_raw_0001_p03.fits"]
    assert req.token.reveal() == TOKEN and TOKEN not in repr(req) and TOKEN not in json.dumps(req.describe())
    assert req.max_tries == 4 and req.caldb_url == "http://caldb.example:8080"
    assert req.parameters == {"detect": {"det_ml_threshold": 12}}


BAD = [
    (lambda d: d["target"].pop("obs_id"), "target.obs_id", "required"),
    (lambda d: d["target"].update(mode="XBAND"), "target.mode", "not one of"),
    (lambda d: d["target"]["burst_position"].update(ra=360.0), "target.burst_position.ra", "less than 360"),
    (lambda d: d["target"]["burst_position"].update(dec="north"), "target.burst_position.dec", "expected number"),
    (lambda d: d.update(tokn="x"), "tokn", "unknown key"),
    (lambda d: d.update(inputs={"att": "a.fits"}), "inputs", "none of the allowed forms"),
    (lambda d: d.update(inputs={"l1": [], "att": "a"}), "inputs.l1", "at least 1"),
    (lambda d: d["services"].update(caldb_url="ftp://x"), "services.caldb_url", "pattern"),
    (lambda d: d["services"].update(max_tries=True), "services.max_tries", "expected integer"),
    (lambda d: d.update(pipeline="xband-gp"), "target.mode", "does not match pipeline"),
    (lambda d: d["target"].update(mode="X-VHF"), "target.mode", "designed"),
    (lambda d: d["target"].update(obs_id="../etc"), "target.obs_id", "pattern"),
    (lambda d: d.update(parameters={"detect": 3}), "parameters.detect", "expected object"),
]


@pytest.mark.parametrize(("mutate", "path", "words"), BAD)
def test_errors_name_the_key(tmp_path, dataset, mutate, path, words):
    doc = valid_doc()
    mutate(doc)
    with pytest.raises(MXTSchemaError) as exc:
        load_runtime_data(_write(tmp_path, doc))
    assert exc.value.keyword == path
    assert any(v.startswith(path + ":") and words in v for v in exc.value.violations), exc.value.violations
    assert TOKEN not in str(exc.value)


def test_every_problem_is_listed(tmp_path):
    doc = valid_doc()
    doc["target"].pop("mode")
    doc.pop("output_dir")
    with pytest.raises(MXTSchemaError) as exc:
        validate_runtime_data(doc)
    assert {v.split(":")[0] for v in exc.value.violations} == {"target.mode", "output_dir"}


def test_unreadable_files_never_quote_the_token(tmp_path):
    p = tmp_path / "runtime_data.json"
    p.write_text('{"token": "' + TOKEN + '", "pipeline": xband}')
    with pytest.raises(MXTFormatError) as exc:
        load_runtime_data(p)
    assert "line 1" in str(exc.value) and TOKEN not in str(exc.value)
    with pytest.raises(MXTInputError, match="not found"):
        load_runtime_data(tmp_path / "nope.json")


def test_dataset_and_target_must_agree(tmp_path, dataset):
    doc = valid_doc()
    doc["target"]["obs_id"] = "0002"
    with pytest.raises(MXTInputError) as exc:
        load_runtime_data(_write(tmp_path, doc))
    assert exc.value.keyword == "target.obs_id"


def test_explicit_files_and_missing_inputs(tmp_path, dataset):
    doc = valid_doc()
    doc["inputs"] = {"l1": ["data/obs1/l1/mxt_l1_raw_0001_p02.fits"], "att": "data/obs1/aux/mxt_att_0001.fits",
                     "saa_dir": "data/obs1/saa", "tstart": 1.0, "tstop": 2.0}  # fmt: skip
    req = load_runtime_data(_write(tmp_path, doc))
    assert req.inputs.manifest["tstart"] == 1.0 and req.inputs.dataset_dir is None
    assert [r for r, _ in req.inputs.files()] == ["l1", "att"]
    doc["inputs"]["att"] = "nope.fits"
    with pytest.raises(MXTInputError) as exc:
        load_runtime_data(_write(tmp_path, doc))
    assert exc.value.keyword == "inputs.att"
    doc["inputs"] = {"l1": ["gone.fits"], "att": "data/obs1/aux/mxt_att_0001.fits", "saa_dir": "data/obs1/saa"}
    with pytest.raises(MXTInputError, match="none of the 1 L1"):
        load_runtime_data(_write(tmp_path, doc))
    doc["inputs"] = {"l1": ["data/obs1/l1/mxt_l1_raw_0001_p02.fits"], "att": "data/obs1/aux/mxt_att_0001.fits"}
    doc["services"].pop("caldb_url")
    with pytest.raises(MXTInputError) as exc:
        load_runtime_data(_write(tmp_path, doc))
    assert exc.value.keyword == "services.sdb_url"


def test_request_from_dataset(dataset, tmp_path):
    req = request_from_dataset(dataset, "xband-gp", tmp_path / "out", token=" ")
    assert req.target.mode == "XBAND-GP" and req.target.obs_id == "0001" and req.token is None
    assert req.target.trigger_time == 3.0e8 - 100.0
    with pytest.raises(MXTInputError, match="unknown pipeline"):
        request_from_dataset(dataset, "xband-vhf", tmp_path)
    with pytest.raises(MXTError):
        ObservationInputs.from_dataset(tmp_path / "nothing")


# ---- the key-path checker agrees with plain jsonschema validation ---------------------------

_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 400), st.floats(-100, 400, allow_nan=False),
                  st.text(max_size=6), st.just("XBAND-CP"), st.just("http://x"))  # fmt: skip


@st.composite
def mutated_docs(draw):
    doc = copy.deepcopy(valid_doc())
    doc["inputs"] = draw(st.sampled_from([{"dataset": "d"}, {"l1": ["a"], "att": "b"}, {"l1": []}, {}]))
    paths = [("target", "obs_id"), ("target", "mode"), ("target", "burst_position", "ra"),
             ("target", "burst_position", "dec"), ("target", "burst_position", "error_radius_arcmin"),
             ("services", "max_tries"), ("services", "sdb_url"), ("token",), ("pipeline",), ("extra",),
             ("target", "trigger_time"), ("options", "force"), ("parameters", "detect")]  # fmt: skip
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(paths))
        node = doc
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            if draw(st.booleans()):
                node[path[-1]] = draw(_leaf)
            else:
                node.pop(path[-1], None)
    return doc


@given(mutated_docs())
def test_checker_agrees_with_jsonschema(doc):
    reference = jsonschema.Draft202012Validator(runtime_schema())
    ours = check(doc, runtime_schema())
    assert (not ours) == reference.is_valid(doc), (ours, [e.message for e in reference.iter_errors(doc)])
