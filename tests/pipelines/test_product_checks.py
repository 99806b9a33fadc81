"""Every FITS product is checked as soon as it is written (schema, fitsverify) and never
published when it fails."""

from __future__ import annotations

import numpy as np
from astropy.table import Table

from mxt_pipeline.datamodel import GTI, EventList
from mxt_pipeline.pipelines import Brick, BrickStatus, Port
from mxt_pipeline.pipelines.bricks.codecs import L2_EVENTS
from mxt_pipeline.pipelines.status import ProcessingStatus, status_for_exception


def _events(rawy: int) -> EventList:
    t = EventList.empty_table()
    n = 5
    cols = {c: np.zeros(n, dtype=t[c].dtype) for c in t.colnames}
    cols["TIME"] = np.arange(n, dtype=float)
    cols["RAWY"] = np.full(n, rawy, np.int16)
    cols["MULTIPLICITY"] = np.ones(n, np.int16)
    cols["ENERGY"] = np.full(n, 1.5, np.float32)
    return EventList(Table(cols), gti=GTI([0.0], [10.0]), meta={"OBS_ID": "00000042", "RA_NOM": 1.0, "DEC_NOM": 2.0})


def _brick(rawy: int) -> Brick:
    return Brick("emit", "writes L2 events", lambda inputs, params, cal: {"events": _events(rawy)},
                 outputs=(Port("events", L2_EVENTS, "events"),))  # fmt: skip


def test_a_valid_product_is_recorded_as_checked(tmp_path):
    res = _brick(10).run_standalone({}, out_dir=tmp_path)
    assert res.status is BrickStatus.SUCCESS
    checks = res.outputs[0].extra["checks"]
    assert checks["schema"] == "ok" and checks["fitsverify"] in ("ok", "not installed")
    assert res.outputs[0].to_dict()["checks"] == checks  # in the report and the manifest


def test_a_product_failing_its_schema_is_deleted_and_the_brick_fails(tmp_path):
    res = _brick(999).run_standalone({}, out_dir=tmp_path, raise_on_error=False)
    assert res.status is BrickStatus.FAILED and res.error.phase == "outputs"
    assert res.error.column == "RAWY" and res.error.hdu == "EVENTS"
    assert "fails its format" in res.error.message
    assert not (tmp_path / "mxt_l2_evt_00000042.fits").exists()
    assert status_for_exception(res.exception, res.error.phase) is ProcessingStatus.INTERNAL_ERROR


def test_a_product_failing_fitsverify_is_deleted(tmp_path, monkeypatch):
    from mxt_pipeline.io import fitsverify as fv

    def failing(path):
        return fv.FitsverifyResult(str(path), 1, 0, "*** Error:   bad TFORM keyword\n")

    monkeypatch.setattr(fv, "fitsverify_available", lambda: True)
    monkeypatch.setattr(fv, "run_fitsverify", failing)
    res = _brick(10).run_standalone({}, out_dir=tmp_path, raise_on_error=False)
    assert res.status is BrickStatus.FAILED and "fitsverify" in res.error.message and "bad TFORM" in res.error.message
    assert not (tmp_path / "mxt_l2_evt_00000042.fits").exists()
