"""Packet files, ``mxt simulate --telemetry`` and ``mxt preprocess`` from the command line."""

from __future__ import annotations

import json

import pytest

from mxt_pipeline.cli.main import main
from mxt_pipeline.errors import MXTFormatError, MXTInputError
from mxt_pipeline.io.telemetry_stream import (
    REPORT_NAME,
    find_packet_files,
    preprocess_passes,
    read_packet_file,
    write_packet_file,
)


def test_packet_file_round_trip_and_short_last_record(tmp_path):
    packets = [b"abc", b"", b"\x00" * 70000]
    f = write_packet_file(tmp_path / "p.dat", packets)
    assert read_packet_file(f) == packets
    assert read_packet_file(f, max_packets=2) == packets[:2]  # the head only (dating a dataset)
    data = f.read_bytes()
    (tmp_path / "cut.dat").write_bytes(data[:-10])
    assert read_packet_file(tmp_path / "cut.dat")[-1] == b"\x00" * 69990  # kept short: decoding counts it
    (tmp_path / "cut2.dat").write_bytes(data[:2])
    with pytest.raises(MXTFormatError, match="byte 0") as e:
        read_packet_file(tmp_path / "cut2.dat")
    assert "cut2.dat" in str(e.value)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(MXTInputError, match="packet file not found"):
        read_packet_file(tmp_path / "none.dat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MXTInputError, match="no packet file"):
        find_packet_files(tmp_path / "empty")
    with pytest.raises(MXTInputError, match="no pass folder"):
        preprocess_passes([], tmp_path / "out")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "ds"
    rc = main(["simulate", "grb", "--template", "analytic", "--duration", "300", "--seed", "2", "--out", str(out),
               "--no-progress", "--telemetry", "--tm-loss", "0.01", "--tm-overlap", "5", "--tm-reorder", "0.01",
               "--tm-corrupt", "1e-5"])  # fmt: skip
    assert rc == 0
    return out


def test_simulate_writes_one_packet_folder_per_pass(simulated):
    doc = json.loads((simulated / "telemetry" / "telemetry.json").read_text())
    l1 = json.loads((simulated / "dataset.json").read_text())["files"]["l1"]
    assert len(doc["passes"]) == len(l1)
    assert doc["defects"]["loss_rate"] == 0.01 and doc["defects"]["overlap_packets"] == 5
    for p in doc["passes"]:
        assert len(find_packet_files(simulated / "telemetry" / p)) == 1


def test_preprocess_command_writes_a_dataset_and_a_report_that_adds_up(simulated, tmp_path, capsys):
    doc = json.loads((simulated / "telemetry" / "telemetry.json").read_text())
    dirs = [str(simulated / "telemetry" / p) for p in doc["passes"]]
    assert main(["preprocess", *dirs, "--aux", str(simulated), "--out", str(tmp_path / "pre")]) == 0
    assert "packets read" in capsys.readouterr().out
    r = json.loads((tmp_path / "pre" / REPORT_NAME).read_text())
    assert r["packets_read"] == r["kept"] + r["duplicated"] + r["corrupted"]
    assert r["expected"] == r["kept"] + r["missing"] == doc["packets_generated"]
    assert r["corrupted"] == doc["injected"]["corrupted"]
    assert r["duplicated"] <= doc["injected"]["duplicated"]
    m = json.loads((tmp_path / "pre" / "dataset.json").read_text())
    assert m["obs_id"] == json.loads((simulated / "dataset.json").read_text())["obs_id"]
    assert all((tmp_path / "pre" / f).is_file() for f in [*m["files"]["l1"], m["files"]["att"], m["files"]["ang"]])


def test_preprocess_refuses_to_write_into_a_pass_folder(simulated, capsys):
    d = simulated / "telemetry" / "pass_01"
    assert main(["preprocess", str(d), "--out", str(d / "x")]) == 2
    assert "pass folder" in capsys.readouterr().err


def test_tm_options_need_telemetry(tmp_path, capsys):
    rc = main(["simulate", "gp", "--duration", "50", "--out", str(tmp_path / "x"), "--no-progress", "--tm-loss", "0.1"])
    assert rc == 2
    assert "--telemetry" in capsys.readouterr().err


def test_run_from_telemetry_without_telemetry_is_bad_input(tmp_path, capsys):
    from tests.pipelines.xband_data import make_dataset

    make_dataset(tmp_path / "obs", n_source=50, n_background=50)
    rc = main(["run", str(tmp_path / "obs"), "--from-telemetry", "--pipeline", "xband-gp", "--out", str(tmp_path / "o")])
    assert rc == 10
    assert "no telemetry" in capsys.readouterr().err


def test_describe_shows_preprocess_first_only_for_telemetry(capsys):
    assert main(["run", "--describe", "--pipeline", "xband-cp", "--from-telemetry"]) == 0
    tm = json.loads(capsys.readouterr().out)
    assert [b["name"] for b in tm["bricks"]][:2] == ["preprocess", "calibrate"]
    assert "telemetry" in tm["external"] and "l1_passes" not in tm["external"]
    assert main(["run", "--describe", "--pipeline", "xband-cp"]) == 0
    l1 = json.loads(capsys.readouterr().out)
    assert [b["name"] for b in l1["bricks"]][0] == "calibrate" and "l1_passes" in l1["external"]


def test_from_telemetry_needs_a_dataset(tmp_path, capsys):
    rc = main(["run", "--runtime-data", str(tmp_path / "r.json"), "--from-telemetry"])
    assert rc == 2
    assert "--from-telemetry needs DATASET" in capsys.readouterr().err


def test_run_on_telemetry_prints_the_defect_counts(tmp_path, capsys):
    """`mxt run DATASET --from-telemetry`: preprocess is the pipeline's first brick, its counts on stderr."""
    from mxt_pipeline.io.dataset_manifest import read_manifest
    from mxt_pipeline.io.products import read_attitude, read_raw_hits
    from mxt_pipeline.io.telemetry_stream import write_telemetry
    from mxt_pipeline.pipelines.status import read_status
    from mxt_pipeline.telemetry.downlink import DownlinkDefects
    from tests.pipelines.xband_data import make_dataset

    obs = tmp_path / "obs"
    make_dataset(obs, n_source=200, n_background=100)
    m = read_manifest(obs)
    write_telemetry([read_raw_hits(obs / f) for f in m["files"]["l1"]], read_attitude(obs / m["files"]["att"]), obs,
                    defects=DownlinkDefects(overlap_packets=5), seed=3)  # fmt: skip
    rc = main(["run", str(obs), "--from-telemetry", "--pipeline", "xband-gp", "--out", str(tmp_path / "o"),
               "--caldb", "fixtures_caldb", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    st = read_status(tmp_path / "o")
    assert [b["name"] for b in st.bricks][0] == "preprocess", err
    assert rc == st.exit_code
    assert "telemetry:" in err and " 5 duplicated, 0 corrupted, 0 missing" in err, err
    assert not (tmp_path / "o" / "preprocessed").exists()  # no L1 dataset decoded beside the run any more


def test_a_pass_dumped_again_into_another_folder_is_read_too(tmp_path):
    """Two pass folders holding a packet file of the same name are two deliveries, not one."""
    from mxt_pipeline.pipelines.runtime import ObservationInputs

    root = tmp_path / "ds"
    for folder in ("pass_01", "pass_01_redump"):
        write_packet_file(root / "telemetry" / folder / "mxt_tm_X_p01.dat", [b"x"])
    (root / "dataset.json").write_text(json.dumps({
        "obs_id": "X", "files": {"telemetry": ["telemetry/pass_01", "telemetry/pass_01_redump"]}}))
    obs = ObservationInputs.from_dataset(root)
    assert obs.from_telemetry and obs.att is None and obs.l1 == ()
    files = obs.port_files()["telemetry"]
    assert sorted(files) == ["pass_01/mxt_tm_X_p01", "pass_01_redump/mxt_tm_X_p01"]
    assert [role for role, _ in obs.files()].count("telemetry") == 2
    (root / "dataset.json").write_text(json.dumps({"obs_id": "X", "files": {"telemetry": ["telemetry/pass_09"]}}))
    with pytest.raises(MXTInputError, match="pass folder not found"):
        ObservationInputs.from_dataset(root)


def test_a_telemetry_dataset_without_tstart_is_dated_by_its_packets(simulated, tmp_path):
    """The CALDB is selected for the observation's date, not for the day the run happens."""
    import shutil

    from mxt_pipeline.caldb.select import met_to_datetime
    from mxt_pipeline.io.telemetry_stream import read_packet_file
    from mxt_pipeline.pipelines.execute import observation_date
    from mxt_pipeline.pipelines.runtime import ObservationInputs
    from mxt_pipeline.telemetry.packets import parse_packet

    ds = tmp_path / "tm"
    shutil.copytree(simulated, ds, ignore=shutil.ignore_patterns("l1"))
    manifest = json.loads((ds / "dataset.json").read_text())
    manifest.pop("tstart", None)
    manifest["files"].pop("l1", None)
    manifest["files"].pop("att", None)
    passes = json.loads((ds / "telemetry" / "telemetry.json").read_text())["passes"]
    manifest["files"]["telemetry"] = [f"telemetry/{p}" for p in passes]
    (ds / "dataset.json").write_text(json.dumps(manifest))
    inputs = ObservationInputs.from_dataset(ds)
    assert inputs.from_telemetry and "tstart" not in inputs.manifest

    class _Request:
        pass

    request = _Request()
    request.inputs = inputs
    first = min(parse_packet(r).cuc_time for f in inputs.telemetry for r in read_packet_file(f, max_packets=8)
                if len(r) > 20 and _valid(r))  # fmt: skip
    assert observation_date(request) == met_to_datetime(first)
    assert observation_date(request).year == 2026  # the simulated epoch, not today


def _valid(raw):
    from mxt_pipeline.errors import MXTFormatError
    from mxt_pipeline.telemetry.packets import parse_packet

    try:
        parse_packet(raw)
    except MXTFormatError:
        return False
    return True
