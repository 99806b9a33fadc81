"""``mxt compare RUN_DIR`` on products written through the I/O layer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner

from mxt_pipeline.cli.main import cli
from mxt_pipeline.datamodel import GTI
from mxt_pipeline.detect.bands import as_bands
from mxt_pipeline.io.lightcurve_product import write_light_curve
from mxt_pipeline.io.srclist_product import write_srclist
from mxt_pipeline.io.truth import write_truth
from mxt_pipeline.simulate.timeprofiles import Periodic

from .truthkit import (
    SPAN,
    T0,
    light_curve_of,
    offset_position,
    poisson_times,
    source,
    srclist,
    truth,
)


@pytest.fixture()
def run_dir(tmp_path):
    rng = np.random.default_rng(1)
    prof = Periodic(period=1000.0, amplitude=0.5, t0=T0)
    doc = truth([source("GRB A", 10.0, -20.0, counts=8000.0, profile=prof.to_dict()), source("B", 10.3, -20.1)])
    write_truth(tmp_path / "truth.json", doc)
    a = offset_position(10.0, -20.0, east_arcsec=12.0)
    table = srclist([(*a, 30.0, 7800.0, 90.0, 2000.0)])
    out = tmp_path / "products"
    out.mkdir()
    write_srclist(out / "mxt_sop_sky_SIM1.fits", table, as_bands(None)[:1], obs_id="SIM1", syserr_arcsec=25.0,
                  ml_threshold=10.0, tstart=T0, tstop=T0 + SPAN)  # fmt: skip
    lc = light_curve_of(poisson_times(prof, 2.0, rng), GTI([T0], [T0 + SPAN]), n_bins=20)
    write_light_curve(out / "mxt_lc_SIM1_src1.fits", lc)
    return tmp_path


def test_compare_prints_tables_and_writes_json_ecsv_and_plots(run_dir):
    res = CliRunner().invoke(cli, ["compare", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert "GRB A" in res.output and "Verdicts" in res.output
    assert "position" in res.output and "PASS" in res.output
    out = run_dir / "compare"
    rec = json.loads((out / "compare.json").read_text())
    a, b = rec["sources"]
    assert a["found"] and a["offset_arcsec"] == pytest.approx(12.0, abs=0.01)
    assert a["light_curve"]["pvalue"] > 1e-3 and not b["found"]
    assert rec["verdicts"]["light_curve"] == "PASS" and rec["verdicts"]["detection"] == "FAIL"
    tab = Table.read(out / "compare_sources.ecsv")
    assert list(tab["FOUND"]) == [True, False] and tab["OFFSET"][0] == pytest.approx(12.0, abs=0.01)
    for name in ("positions.png", "lc_GRB_A.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_strict_exit_status_and_missing_products(run_dir, tmp_path_factory):
    res = CliRunner().invoke(cli, ["compare", str(run_dir), "--no-plots", "--strict", "--out", str(run_dir / "o")])
    assert res.exit_code == 1  # source B was detectable and missed
    empty = tmp_path_factory.mktemp("empty")
    (empty / "truth.json").write_text((run_dir / "truth.json").read_text())
    res = CliRunner().invoke(cli, ["compare", str(empty)])
    assert res.exit_code != 0 and "source list" in str(res.exception)


def _publish(folder, files):
    """A published collection: ``files`` (name -> source path) and a manifest of their checksums."""
    import hashlib
    import shutil

    folder.mkdir(parents=True)
    listed = []
    for name, src in files.items():
        shutil.copy2(src, folder / name)
        listed.append({"path": name, "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest()})
    (folder / "manifest.json").write_text(json.dumps({"pipeline": "xband-cp", "files": listed}))
    return folder


@pytest.fixture()
def readme_layout(run_dir, tmp_path_factory):
    """The README's layout: ``sim/grb1/truth.json`` and ``out/`` holding the collections of
    two datasets (the golden one run first, then the simulation), ``latest.json`` beside."""
    root = tmp_path_factory.mktemp("readme")
    (root / "sim" / "grb1").mkdir(parents=True)
    (root / "sim" / "grb1" / "truth.json").write_text((run_dir / "truth.json").read_text())
    prod = run_dir / "products"
    other = _publish(root / "out" / "xband-cp_GOLD0001_c1_p1_v001", {"mxt_sop_sky_GOLD0001.fits": prod / "mxt_sop_sky_SIM1.fits"})
    mine = _publish(root / "out" / "xband-cp_SIM1_c1_p1_v002", {"mxt_sop_sky_SIM1.fits": prod / "mxt_sop_sky_SIM1.fits",
                                                             "mxt_lc_SIM1_src1.fits": prod / "mxt_lc_SIM1_src1.fits"})  # fmt: skip
    (root / "out" / "latest.json").write_text(json.dumps({"xband-cp": mine.name}))
    return root, other, mine


def test_compare_out_folder_picks_the_truths_collection_and_writes_beside_it(readme_layout):
    from mxt_pipeline.pipelines.collection import verify_collection

    root, other, mine = readme_layout
    res = CliRunner().invoke(cli, ["compare", str(root / "out"), "--truth", str(root / "sim/grb1/truth.json"),
                                   "--no-plots"])  # fmt: skip
    assert res.exit_code == 0, res.output
    beside = root / "out" / f"compare_{mine.name}"
    assert json.loads((beside / "compare.json").read_text())["sources"][0]["found"]
    # Published collections are never touched after publication.
    assert verify_collection(mine) == [] and verify_collection(other) == []
    # Given the collection itself, the comparison also goes beside it.
    res = CliRunner().invoke(cli, ["compare", str(mine), "--truth", str(root / "sim/grb1/truth.json"), "--no-plots"])
    assert res.exit_code == 0, res.output
    assert verify_collection(mine) == []


def test_compare_refuses_an_out_folder_inside_a_collection(readme_layout):
    root, _, mine = readme_layout
    res = CliRunner().invoke(cli, ["compare", str(mine), "--truth", str(root / "sim/grb1/truth.json"), "--no-plots",
                                   "--out", str(mine / "compare")])  # fmt: skip
    assert res.exit_code != 0
    assert "published collection" in str(res.exception) and not (mine / "compare").exists()


def test_comparison_plot_labels_are_readable(run_dir, monkeypatch):
    """The light-curve plot's x axis gives a date, not ``time - 300000000.0``; the
    position plot states the confidence of its circles."""
    from mxt_pipeline.campaign import plots

    figs = []
    real = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (figs.append(fig), real(fig, path))[1])
    res = CliRunner().invoke(cli, ["compare", str(run_dir)])
    assert res.exit_code == 0, res.output
    labels = [ax.get_xlabel() for f in figs for ax in f.axes]
    titles = [ax.get_title() for f in figs for ax in f.axes]
    assert any("TT (s)" in lab for lab in labels) and not any("time - " in lab for lab in labels), labels
    assert any("90% error circles" in t for t in titles), titles
