"""One chain: every entry point runs the same bricks and makes the same bytes.

The same L1 dataset (golden ``three_sources``, XBAND-GP, the bundled CALDB) goes
through

1. ``mxt run`` (the pipeline and its collection);
2. ``mxt calibrate`` + ``mxt detect`` + ``mxt lightcurve`` (each brick alone);
3. a campaign run's processing (:func:`mxt_pipeline.campaign.execute.chain_context` and
   ``Pipeline.run`` on the observation read into memory);
4. the detection acceptance study's per-run detector
   (:class:`mxt_pipeline.acceptance.detection.BrickDetector`) on the L2 events.

Under one SOURCE_DATE_EPOCH, the L2 event files, the source lists and the light curves
must be byte-identical: a default, a CALDB selection or a writer that differs between
two entry points fails here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from mxt_pipeline.cli.main import main
from mxt_pipeline.datapaths import REPO_ROOT
from mxt_pipeline.io.fits import source_date_epoch

DATASET = REPO_ROOT / "golden" / "three_sources" / "input"
EPOCH = 1767225600  # 2026-01-01T00:00:00Z


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _products(folder: Path) -> dict[str, str]:
    """SHA-256 of the L2, source list and light curves below ``folder``, by kind and key."""
    out = {}
    for p in sorted(Path(folder).rglob("*.fits")):
        if p.name.startswith("mxt_l2_evt_"):
            out["l2"] = _digest(p)
        elif p.name.startswith("mxt_sop_sky_"):
            out["srclist"] = _digest(p)
        elif p.name.startswith("mxt_lc_"):
            out["lc_" + p.stem.rsplit("_", 1)[-1]] = _digest(p)
    return out


@pytest.fixture(scope="module")
def entry_points(tmp_path_factory):
    from mxt_pipeline.acceptance.detection import BrickDetector, ValidationSetup
    from mxt_pipeline.campaign.execute import chain_context
    from mxt_pipeline.io.products import (
        read_angles,
        read_attitude,
        read_events,
        read_raw_hits,
        read_saa,
    )
    from mxt_pipeline.pipelines.bricks.codecs import SRCLIST
    from mxt_pipeline.pipelines.caldb_bundle import provider_from
    from mxt_pipeline.pipelines.registry import get_pipeline

    root = tmp_path_factory.mktemp("equivalence")
    dataset = root / "dataset"
    shutil.copytree(DATASET, dataset)
    manifest = json.loads((dataset / "dataset.json").read_text())
    got: dict[str, dict[str, str]] = {}
    with source_date_epoch(EPOCH):
        # 1. mxt run
        assert main(["run", str(dataset), "--pipeline", "xband-gp", "--out", str(root / "run")]) == 0
        (collection,) = [p for p in (root / "run").iterdir() if p.is_dir() and (p / "run_report.json").exists()]
        got["mxt run"] = _products(collection)

        # 2. the bricks one by one, from the command line
        cli = root / "cli"
        att = dataset / manifest["files"]["att"]
        assert main(["calibrate", str(dataset), "--out", str(cli / "mxt_l2_evt_GOLD0003.fits")]) == 0
        assert main(["detect", str(cli / "mxt_l2_evt_GOLD0003.fits"), "--att", str(att),
                     "--out", str(cli / "mxt_sop_sky_GOLD0003.fits")]) == 0  # fmt: skip
        assert main(["lightcurve", str(cli / "mxt_l2_evt_GOLD0003.fits"), "--srclist",
                     str(cli / "mxt_sop_sky_GOLD0003.fits"), "--out", str(cli / "lc")]) == 0  # fmt: skip
        got["standalone bricks"] = _products(cli)

        # 3. a campaign run's processing, on the observation held in memory
        values = {
            "l1_passes": {Path(f).stem: read_raw_hits(dataset / f) for f in manifest["files"]["l1"]},
            "attitude": read_attitude(att),
            "angles": read_angles(dataset / manifest["files"]["ang"]),
            "saa": [read_saa(p) for p in sorted((dataset / "saa").glob("mxt_saa_w*.fits"))],
        }
        pipeline = get_pipeline("xband-gp")
        ctx = chain_context(values, manifest, provider_from(None), {}, root / "campaign")
        result = pipeline.run(ctx)
        assert result.failed is None
        got["campaign run"] = _products(root / "campaign")

        # 4. the acceptance study's detector on the L2 events
        setup = ValidationSetup.from_caldb(None)
        events = read_events(cli / "mxt_l2_evt_GOLD0003.fits")
        res = BrickDetector(setup).detect_events(events, read_attitude(att))
        path = root / "acceptance" / "mxt_sop_sky_GOLD0003.fits"
        path.parent.mkdir()
        SRCLIST.write(path, res.values["srclist"], {"obs_id": "GOLD0003"})
        got["acceptance study"] = {"srclist": _digest(path)}
    return got


def test_every_entry_point_makes_the_same_products(entry_points):
    reference = entry_points["mxt run"]
    assert set(reference) >= {"l2", "srclist", "lc_src1"}, reference
    for name, products in entry_points.items():
        for kind, digest in products.items():
            assert digest == reference[kind], f"{name}: {kind} differs from mxt run's"
        if name != "acceptance study":
            assert set(products) == set(reference), f"{name}: {sorted(products)} vs {sorted(reference)}"
