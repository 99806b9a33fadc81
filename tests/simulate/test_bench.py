"""End to end: the CLI writes valid datasets; seeds reproduce them; components are independent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.cli.main import main
from mxt_pipeline.datapaths import swift_xrt_dir
from mxt_pipeline.io import read_product, validate_file
from mxt_pipeline.io.products import read_raw_hits
from mxt_pipeline.io.simulated_dataset import load_scenario, write_dataset, write_scenario
from mxt_pipeline.io.truth import read_truth
from mxt_pipeline.simulate.bench import simulate
from mxt_pipeline.simulate.cases import gp_scenario, grb_scenario
from mxt_pipeline.simulate.sources import Source
from mxt_pipeline.simulate.spectra import PowerLaw


def _fits_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.fits"))


def _table_data(path: Path) -> dict:
    prod = read_product(path)
    return {name: {c: np.asarray(h.table[c]) for c in h.table.colnames}
            for name, h in prod.hdus.items() if h.table is not None}  # fmt: skip


@pytest.fixture(scope="module")
def grb_dataset(calset, tmp_path_factory):
    """``mxt simulate grb --template GRB_061121 --seed 1 --out D`` (analytic without the data)."""
    out = tmp_path_factory.mktemp("grb") / "D"
    template = "GRB_061121" if swift_xrt_dir() is not None else "analytic"
    rc = main(["simulate", "grb", "--template", template, "--seed", "1", "--out", str(out), "--no-progress",
               "--write-scenario", str(out.parent / "grb.yaml")])  # fmt: skip
    assert rc == 0
    return out


def test_cli_grb_dataset_is_valid(grb_dataset, fitsverify):
    root = grb_dataset
    manifest = json.loads((root / "dataset.json").read_text())
    files = [manifest["files"]["att"], manifest["files"]["ang"], *manifest["files"]["l1"], *manifest["files"]["saa"]]
    assert sorted(root / f for f in files) == _fits_files(root)
    assert len(manifest["files"]["l1"]) >= 2
    for f in _fits_files(root):
        assert validate_file(f) == [], f
        res = fitsverify(f)
        assert res.ok, res.output
    truth = read_truth(root / "truth.json")
    assert truth["seed"] == 1 and truth["caldb"]["files"]["PSF"]
    assert truth["sources"][0]["in_fov"]
    # Hits in the golden-size range for a 10 ks GRB.
    assert 1e4 < truth["counts"]["hits"] < 1e6
    assert sum(truth["counts"]["hits_per_pass"].values()) >= truth["counts"]["hits"]
    # PHA in ADU with the offsets: no hit below the offset of its column.
    hits = read_raw_hits(root / manifest["files"]["l1"][0])
    assert hits["PHA"].min() > 0


def test_scenario_replay_gives_the_same_data(grb_dataset, tmp_path):
    """The written scenario, run with the same seed, reproduces every data value."""
    out = tmp_path / "again"
    rc = main(["simulate", "scenario", str(grb_dataset / "scenario.yaml"), "--seed", "1", "--out", str(out),
               "--no-progress"])  # fmt: skip
    assert rc == 0
    a, b = _fits_files(grb_dataset), _fits_files(out)
    assert [p.relative_to(grb_dataset) for p in a] == [p.relative_to(out) for p in b]
    for pa, pb in zip(a, b):
        da, db = _table_data(pa), _table_data(pb)
        assert da.keys() == db.keys()
        for hdu in da:
            for col in da[hdu]:
                np.testing.assert_array_equal(da[hdu][col], db[hdu][col], err_msg=f"{pa.name}[{hdu}].{col}")
    ta = read_truth(grb_dataset / "truth.json")
    tb = read_truth(out / "truth.json")
    assert ta == tb


def test_different_seed_gives_different_data(calset):
    sc = gp_scenario(3, n_sources=1, duration=500.0)
    a = simulate(sc, 1, calset)
    b = simulate(sc, 2, calset)
    assert a.n_hits != b.n_hits or not np.array_equal(a.hits["PHA"], b.hits["PHA"])


def test_appending_a_source_leaves_the_others_unchanged(calset):
    sc = gp_scenario(8, n_sources=2, duration=1000.0)
    base = simulate(sc, 5, calset)
    extra = Source("EXTRA", sc.sources[0].ra + 0.1, sc.sources[0].dec, 1e-11, PowerLaw(2.0, 0.1))
    sc.sources.append(extra)
    more = simulate(sc, 5, calset)
    for comp in range(2):
        a = base.photons.select(base.photons.component == comp)
        b = more.photons.select(more.photons.component == comp)
        np.testing.assert_array_equal(a.time, b.time)
        np.testing.assert_array_equal(a.energy, b.energy)
        np.testing.assert_array_equal(a.rawy, b.rawy)
    # Hits of pixels the new source does not touch are identical (counter-based noise).
    new = more.photons.select(more.photons.component == len(sc.sources) - 1)
    touched = set(zip(new.frame.tolist(), np.floor(new.rawy + 0.5).astype(int).tolist()))

    def keyed(ds):
        h = ds.hits
        return {(f, y, z): p for f, y, z, p in zip(h["FRAME"].tolist(), h["RAWY"].tolist(), h["RAWZ"].tolist(),
                                                 h["PHA"].tolist()) if (f, y) not in touched and (f, y - 1) not in touched
                and (f, y + 1) not in touched}  # fmt: skip

    assert keyed(base) == keyed(more)


def test_grb_scenario_roundtrip_file(tmp_path):
    sc = grb_scenario(2, template=None)
    write_scenario(sc, tmp_path / "s.yaml")
    assert load_scenario(tmp_path / "s.yaml").to_dict() == sc.to_dict()


def test_dataset_feeds_the_calibration_chain(calset, tmp_path):
    """The calibration chain ingests a simulated dataset: passes merged, duplicates found,
    every gap origin accounted for, events reconstructed."""
    from tests.bricks import calibrate_dataset_dir

    sc = grb_scenario(4, template=None, duration=3000.0)
    ds = simulate(sc, 4, calset)
    root = write_dataset(ds, tmp_path / "D")
    events, report, _, _ = calibrate_dataset_dir(root, calset, tmp_path / "L2")
    assert report["ingest"]["n_passes"] == len(ds.passes)
    assert report["ingest"]["dropped"]["outside_detector"] == 0
    assert report["ingest"]["n_hits_kept"] <= ds.n_hits
    assert len(events) > 0
    # The chain finds the SLEW at the start of the observation.
    assert report["screening"]["lost_by_origin"]["SLEW"] > 0


def test_cli_gp_three_sources_is_a_pipeline_input(calset, tmp_path):
    """``mxt simulate gp --sources 3``: the truth holds the preset's three sources, every
    file passes ``mxt validate``, and the pipelines' input resolver reads the folder."""
    from mxt_pipeline.pipelines.runtime import ObservationInputs

    out = tmp_path / "GP"
    rc = main(["simulate", "gp", "--sources", "3", "--duration", "1500", "--seed", "4", "--out", str(out),
               "--no-progress"])  # fmt: skip
    assert rc == 0
    truth = read_truth(out / "truth.json")
    sc = gp_scenario(4, n_sources=3, duration=1500.0)
    assert [(s["name"], s["ra"], s["dec"], s["flux"]) for s in truth["sources"]] == \
        [(s.name, s.ra, s.dec, s.flux) for s in sc.sources]  # fmt: skip
    assert truth["sources"][0]["in_fov"]
    assert main(["validate", "-q", *map(str, _fits_files(out))]) == 0
    inputs = ObservationInputs.from_dataset(out)
    assert [p.relative_to(out).as_posix() for p in inputs.l1] == truth["files"]["l1"]
    assert inputs.att == (out / truth["files"]["att"]).resolve() and inputs.missing_l1 == ()
    assert inputs.saa_dir is not None and sorted(inputs.saa_dir.glob("mxt_saa_w*.fits"))


def test_cli_montecarlo_runs_are_the_documented_scenarios(calset, tmp_path):
    """``mxt simulate montecarlo --n 2``: run i is the preset drawn with ``run_seed(seed, i)``
    (campaign seed 3: an analytic afterglow, then a GRB from a template when the data exist)."""
    from mxt_pipeline.campaign.seeds import run_seed
    from mxt_pipeline.simulate.cases import montecarlo_scenario

    out = tmp_path / "MC"
    rc = main(["simulate", "montecarlo", "--n", "2", "--seed", "3", "--out", str(out), "--no-progress"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["run_00000", "run_00001"]
    for i in range(2):
        root = out / f"run_{i:05d}"
        truth = read_truth(root / "truth.json")
        s = run_seed(3, i)
        assert truth["seed"] == s
        assert truth["scenario"] == json.loads(json.dumps(montecarlo_scenario(s, obs_id=f"MC{i:06d}").to_dict()))
        assert json.loads((root / "dataset.json").read_text())["obs_id"] == f"MC{i:06d}"
        assert truth["counts"]["hits"] > 0


def test_truth_bands_are_the_default_detection_bands():
    from mxt_pipeline.detect.bands import DEFAULT_BANDS
    from mxt_pipeline.simulate.bench import TRUTH_BANDS

    assert TRUTH_BANDS == tuple((b.e_min, b.e_max) for b in DEFAULT_BANDS)


@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0.0, 12.0, allow_nan=False)), max_size=60))
def test_band_counts_against_a_loop(photons):
    """Per component and band counts, half-open bands, against a plain loop."""
    from mxt_pipeline.simulate.bench import band_counts

    comp = np.array([c for c, _ in photons], dtype=np.int64)
    energy = np.array([e for _, e in photons], dtype=float)
    got = band_counts(comp, energy, 4, ((0.2, 2.0), (2.0, 10.0)))
    want = np.zeros((4, 2), int)
    for c, e in photons:
        for k, (lo, hi) in enumerate(((0.2, 2.0), (2.0, 10.0))):
            want[c, k] += lo <= e < hi
    np.testing.assert_array_equal(got, want)
    assert band_counts(comp, energy, 4)[:, 0].sum() == int(np.sum((energy >= 0.2) & (energy < 2.0)))


def test_truth_counts_detected_photons_per_band(calset):
    sc = gp_scenario(3, n_sources=1, duration=300.0)
    ds = simulate(sc, 1, calset)
    src = ds.truth["sources"][0]
    per_band = src["photons_detected_bands"]
    assert set(per_band) == {"0.2-2", "2-10"}
    assert 0 < sum(per_band.values()) <= src["photons_detected"]
    det = ds.photons.select(ds.photons.component == 0)
    assert per_band["0.2-2"] <= int(np.sum((det.energy >= 0.2) & (det.energy < 2.0)))
