"""Runs end to end on the toy pipeline: collections, idempotency, reprocessing, faults."""

from __future__ import annotations

import hashlib
import json
import logging

import httpx
import pytest

from mxt_pipeline.errors import MXTInputError, MXTServiceUnavailable
from mxt_pipeline.pipelines.collection import CollectionStore, StagingArea, verify_collection
from mxt_pipeline.pipelines.execute import FAST_DIR, execute
from mxt_pipeline.pipelines.reprocess import reprocess, request_from_collection
from mxt_pipeline.pipelines.status import ProcessingStatus, read_status
from mxt_pipeline.services.tokens import Secret

from .toybricks import TOKEN, build_toy, make_caldb, make_observation, make_request

S = ProcessingStatus


def _tree_hashes(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def _collections(out):
    return sorted(p.name for p in out.iterdir() if p.is_dir() and p.name.startswith("toy_"))


def test_success_publishes_a_verified_collection(tmp_path, toy, toy_obs, toy_caldb):
    out = tmp_path / "out"
    outcome = execute(make_request(toy_obs, out, toy_caldb), pipeline=toy)
    assert outcome.exit_code == 0
    st = read_status(out)
    assert st.status is S.SUCCESS and st.collection == outcome.collection.name and st.stopped_at is None
    assert [b["status"] for b in st.bricks] == ["SUCCESS"] * 4
    name = outcome.collection.name
    assert name.startswith("toy_00000042_c00000000-") and name.endswith("_v001")
    assert verify_collection(outcome.collection) == []
    man = json.loads((outcome.collection / "manifest.json").read_text())
    listed = {f["path"] for f in man["files"]}
    assert {"samples_00000042.npy", "histogram_00000042.json", "density_00000042.json", "summary_00000042.txt",
            "run_report.json", "run_report.md", "run_report.html", "processing_status.json"} == listed
    assert man["caldb"][0]["code"] == "GAIN" and man["status"] == "SUCCESS"
    assert len(man["inputs"]) == 4  # three passes and the attitude file
    # The report: per-brick time breakdown, inputs/outputs with checksums, CALDB files.
    rep = json.loads((outcome.collection / "run_report.json").read_text())
    # Times and the timestamped log are kept beside the collection, not published in it.
    record = out / "run_records" / name
    clock = json.loads((record / "timings.json").read_text())
    assert set(clock["timing"]["per_brick_s"]) == {"merge", "histogram", "density", "summary"}
    assert sum(clock["timing"]["per_brick_s"].values()) <= clock["timing"]["total_s"]
    assert set(clock["bricks"]) == {"merge", "histogram", "density", "summary"}
    assert "run " in (record / "run.log").read_text()
    hist = next(b for b in rep["bricks"] if b["name"] == "histogram")
    assert hist["caldb"][0]["file"] == "gain.json" and len(hist["outputs"][0]["sha256"]) == 64
    assert "| histogram | SUCCESS |" in (outcome.collection / "run_report.md").read_text()
    assert json.loads((out / "latest.json").read_text()) == {"toy": name}
    assert not (out / ".staging").exists() or not any((out / ".staging").iterdir())


def test_each_input_is_hashed_once_per_run(tmp_path, toy, toy_obs, toy_caldb, monkeypatch):
    # The run key and the context's input records share one checksum per input file.
    from mxt_pipeline.pipelines import ports

    seen: list[str] = []
    real = ports.sha256_file

    def counting(path, *args, **kwargs):
        seen.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ports, "sha256_file", counting)
    outcome = execute(make_request(toy_obs, tmp_path / "out", toy_caldb), pipeline=toy)
    assert outcome.exit_code == 0
    inputs = [p for p in seen if "/obs/" in p.replace("\\", "/")]
    assert inputs and len(inputs) == len(set(inputs))
    man = json.loads((outcome.collection / "manifest.json").read_text())
    assert all(len(f["sha256"]) == 64 for f in man["inputs"])


def test_idempotent_force_and_never_overwrite(tmp_path, toy, toy_obs, toy_caldb):
    out = tmp_path / "out"
    first = execute(make_request(toy_obs, out, toy_caldb), pipeline=toy)
    before = _tree_hashes(first.collection)
    again = execute(make_request(toy_obs, out, toy_caldb), pipeline=toy)
    assert again.status.already_done and again.collection == first.collection and again.exit_code == 0
    assert _collections(out) == [first.collection.name]
    forced = execute(make_request(toy_obs, out, toy_caldb, force=True), pipeline=toy)
    assert forced.collection.name.endswith("_v002")
    assert _tree_hashes(first.collection) == before
    # Same products, only the reports differ (times).
    a, b = _tree_hashes(first.collection), _tree_hashes(forced.collection)
    for f in ("samples_00000042.npy", "histogram_00000042.json", "density_00000042.json", "summary_00000042.txt"):
        assert a[f] == b[f]


def test_reprocess_with_a_new_caldb(tmp_path, toy, toy_obs, toy_caldb):
    out = tmp_path / "out"
    first = execute(make_request(toy_obs, out, toy_caldb), pipeline=toy)
    before = _tree_hashes(first.collection)
    new_caldb = make_caldb(tmp_path / "caldb2", factor=1.2)
    second = reprocess(first.collection, caldb=new_caldb, pipeline=toy)
    assert second.exit_code == 0 and second.extra["changed_inputs"] == []
    assert second.collection.name.endswith("_v002") and second.collection.parent == out
    assert second.status.versions["caldb"] != first.status.versions["caldb"]
    assert second.collection.name.split("_c")[1] != first.collection.name.split("_c")[1]
    assert _tree_hashes(first.collection) == before  # the old collection is untouched
    h1 = json.loads((first.collection / "histogram_00000042.json").read_text())
    h2 = json.loads((second.collection / "histogram_00000042.json").read_text())
    assert h1["counts"] != h2["counts"]  # the gain changed the histogram
    third = reprocess(first.collection, caldb=new_caldb, pipeline=toy)
    assert third.status.already_done and third.collection == second.collection


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda m: m.pop("target"), "manifest lacks 'target'"),
        (lambda m: m["request"]["inputs"].clear(), "names neither a 'dataset' nor an 'att' file"),
        (lambda m: m["request"].update(inputs=["x"]), "'request.inputs' is not a mapping"),
    ],
    ids=["no-target", "no-inputs", "inputs-not-mapping"],
)
def test_reprocess_of_a_damaged_manifest_names_it(tmp_path, toy, toy_obs, toy_caldb, damage, message):
    first = execute(make_request(toy_obs, tmp_path / "out", toy_caldb), pipeline=toy)
    # A copy of the collection: a published one is never edited in place.
    copy = tmp_path / "copy"
    copy.mkdir()
    man = json.loads((first.collection / "manifest.json").read_text())
    damage(man)
    (copy / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(MXTInputError, match=message) as err:
        request_from_collection(copy, caldb=toy_caldb)
    assert "manifest.json" in str(err.value)


def test_missing_pass_gives_partial_with_valid_products(tmp_path, toy, toy_caldb):
    obs = make_observation(tmp_path / "obs", missing=1)
    outcome = execute(make_request(obs, tmp_path / "out", toy_caldb), pipeline=toy)
    st = read_status(tmp_path / "out")
    assert st.status is S.PARTIAL and outcome.exit_code == 3
    rep = outcome.report
    assert rep["missing_inputs"] and "pass_missing_00" in rep["missing_inputs"][0]
    assert verify_collection(outcome.collection) == []
    # PARTIAL is not "done": a rerun once the pass is there makes a new collection.
    assert not CollectionStore(tmp_path / "out").find_done(st.run_key)


def test_empty_observation_is_no_data(tmp_path, toy, toy_caldb):
    obs = make_observation(tmp_path / "obs", empty=True)
    outcome = execute(make_request(obs, tmp_path / "out", toy_caldb), pipeline=toy)
    assert outcome.status.status is S.NO_DATA and outcome.exit_code == 4
    h = json.loads((outcome.collection / "histogram_00000042.json").read_text())
    assert sum(h["counts"]) == 0 and len(h["counts"]) == 8


class _DownProvider:
    def __init__(self):
        self.calls = 0

    def resolve(self, codes, date):
        self.calls += 1
        raise MXTServiceUnavailable(f"CALDB unreachable (token {TOKEN})")

    def load(self, file):
        raise AssertionError


def test_caldb_down_stops_before_any_work(tmp_path, toy, toy_obs):
    out = tmp_path / "out"
    prov = _DownProvider()
    outcome = execute(make_request(toy_obs, out, prov, token=Secret(TOKEN)), pipeline=toy)
    st = read_status(out)
    assert st.status is S.CALDB_UNAVAILABLE and outcome.exit_code == 12
    assert st.stopped_at == {"phase": "preflight"} and st.reason["type"] == "MXTServiceUnavailable"
    assert TOKEN not in (out / "processing_status.json").read_text()
    assert _collections(out) == [] and not (out / ".staging").exists()


def test_real_cadbio_retries_then_caldb_unavailable(tmp_path, toy, toy_obs):
    """CaDBIO against a CALDB service that never answers: every try made, then the status."""
    from mxt_pipeline.caldb import CaDBIO

    attempts = []

    def refuse(request):
        attempts.append(request.url.path)
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"  # the one token reaches the service
        raise httpx.ConnectError("connection refused", request=request)

    client = CaDBIO(url="http://caldb.invalid:8080", token=TOKEN, max_tries=4,
                    transport=httpx.MockTransport(refuse), sleep=lambda s: None)  # fmt: skip
    outcome = execute(make_request(toy_obs, tmp_path / "out", client, token=Secret(TOKEN)), pipeline=toy)
    assert outcome.status.status is S.CALDB_UNAVAILABLE
    assert len(attempts) == 4
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file():
            assert TOKEN not in f.read_text(errors="replace")


def test_token_never_written(tmp_path, toy_obs, toy_caldb):
    """A brick that logs the token and fails with it in its message: no file holds it."""
    from mxt_pipeline.pipelines import Brick

    toy = build_toy()

    def leaky(inputs, params, cal):
        logging.getLogger("mxt_pipeline.test").warning("calling the SDB with %s", TOKEN)
        raise RuntimeError(f"server said: bad token {TOKEN}")

    toy.bricks[-1] = Brick(**{**toy.bricks[-1].__dict__, "core": leaky})
    out = tmp_path / "out"
    outcome = execute(make_request(toy_obs, out, toy_caldb, token=Secret(TOKEN)), pipeline=toy)
    assert outcome.status.status is S.PARTIAL
    texts = [f.read_text(errors="replace") for f in out.rglob("*") if f.is_file() and f.suffix != ".npy"]
    assert any("calling the SDB with ***" in t for t in texts)  # the log line is there, redacted
    assert not any(TOKEN in t for t in texts)


def test_bad_parameters_are_bad_input(tmp_path, toy, toy_obs, toy_caldb):
    outcome = execute(make_request(toy_obs, tmp_path / "out", toy_caldb, parameters={"histogram": {"bins": "many"}}),
                      pipeline=toy)  # fmt: skip
    assert outcome.status.status is S.BAD_INPUT and outcome.status.stopped_at == {"phase": "runtime"}
    assert outcome.status.reason["keyword"] == "histogram.bins"


def test_busy_when_another_run_holds_the_inputs(tmp_path, toy, toy_obs, toy_caldb):
    out = tmp_path / "out"
    first = execute(make_request(toy_obs, out, toy_caldb), pipeline=toy)
    key = first.status.run_key
    holder = StagingArea(out / ".staging" / key[:24])
    holder.acquire()
    try:
        busy = execute(make_request(toy_obs, out, toy_caldb, force=True), pipeline=toy)
    finally:
        holder.release()
    assert busy.status.status is S.BUSY and busy.exit_code == 75


def test_failed_run_keeps_staging_and_report(tmp_path, toy_obs, toy_caldb):
    toy = build_toy()
    out = tmp_path / "out"
    outcome = execute(make_request(toy_obs, out, toy_caldb, parameters={"merge": {"fail_with": "inconsistent passes"}}),
                      pipeline=toy)  # fmt: skip
    st = read_status(out)
    assert st.status is S.BAD_INPUT and st.stopped_at == {"brick": "merge", "index": 0, "phase": "core"}
    assert st.reason["message"] == "inconsistent passes"
    assert _collections(out) == []
    rep = json.loads((outcome.staging / "run_report.json").read_text())
    assert rep["status"] == "BAD_INPUT" and rep["collection"] is None
    # ... and where people look: beside the status, not only in the hidden staging area.
    seen = out / "failed" / f"{rep['pipeline']}_{rep['target']['obs_id']}"
    assert json.loads((seen / "run_report.json").read_text()) == rep
    assert "inconsistent passes" in (seen / "run_report.html").read_text()


def test_early_products_are_published_before_the_end(tmp_path, toy_obs, toy_caldb):
    toy = build_toy(early_density=True)
    out = tmp_path / "out"
    seen = {}

    def spy(inputs, params, cal):
        seen["fast"] = (out / FAST_DIR / "density_00000042.json").is_file()
        seen["status"] = json.loads((out / "processing_status.json").read_text())["early_products"]
        return {"summary": "done"}

    toy.bricks[-1] = type(toy.bricks[-1])(**{**toy.bricks[-1].__dict__, "core": spy})
    outcome = execute(make_request(toy_obs, out, toy_caldb), pipeline=toy)
    assert outcome.exit_code == 0
    assert seen == {"fast": True, "status": ["fast/density_00000042.json"]}
    assert (out / FAST_DIR / "density_00000042.json").read_bytes() == (outcome.collection / "density_00000042.json").read_bytes()


def test_caldb_service_answering_503_over_http(tmp_path, toy, toy_obs):
    """A real HTTP CALDB service that is down (503 on every request): retries, then the status."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mxt_pipeline.caldb import CaDBIO

    seen = []

    class Down(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Down)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        client = CaDBIO(url=url, token=TOKEN, max_tries=3, sleep=lambda s: None)
        outcome = execute(make_request(toy_obs, tmp_path / "out", client, token=Secret(TOKEN)), pipeline=toy)
    finally:
        server.shutdown()
        server.server_close()
    assert outcome.status.status is S.CALDB_UNAVAILABLE and outcome.exit_code == 12
    assert seen == [f"Bearer {TOKEN}"] * 3  # every try made, each with the one token
    assert outcome.status.stopped_at == {"phase": "preflight"}
