"""truth.json schema: validation naming the bad key, round trip."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.errors import MXTFormatError
from mxt_pipeline.io.truth import read_truth, validate_truth, write_truth


def minimal_truth() -> dict:
    src = {
        "name": "GRB", "ra": 10.0, "dec": -20.0, "flux": 4e-11, "flux_band": [0.3, 10.0],
        "spectrum": {"model": "powerlaw", "index": 2.0, "nh": 0.05},
        "profile": {"model": "constant"}, "in_fov": True, "detectable": True, "offaxis_arcmin": 3.2,
        "expected_photons": 1000.0, "photons_on_detector": 990, "photons_detected": 985,
    }  # fmt: skip
    return {
        "schema": "mxt-sim-truth",
        "schema_version": 1,
        "software": {"name": "mxt_pipeline", "version": "0.1.0"},
        "seed": 1,
        "obs_id": "SIM1",
        "object": "GRB",
        "tstart": 3.0e8,
        "tstop": 3.0e8 + 1e4,
        "trigger_time": None,
        "pointing": {"ra": 10.0, "dec": -20.0, "roll": 0.0, "jitter_arcsec": 2.0, "jitter_tau_s": 30.0, "slew": None},
        "orbit": {"altitude_km": 625.0, "inclination_deg": 30.0, "raan_deg": 0.0, "arg_lat_deg": 0.0, "epoch": 3.0e8},
        "saa_region": {"lon0": -40.0, "lat0": -25.0, "semi_lon": 50.0, "semi_lat": 22.0},
        "sources": [src],
        "background": {"cxb": None, "particle": {"rate_cm2_s_kev": 3e-3}, "calibration": None},
        "detector": {},
        "passes": [{"pass_id": 1, "station": "GS-A", "start": 3.0e8, "stop": 3.0e8 + 1e4, "lost": [],
                    "truncate_last_frame": False}],  # fmt: skip
        "bad_time": {"saa": [], "earth": [[3.0e8, 3.0e8 + 100.0]], "telemetry": []},
        "caldb": {"root": None, "date": "2026-07-06", "files": {"PSF": "data/svom/mxt/bcf/psf/x.fits"}},
        "counts": {"hits": 10, "frames": 5, "hits_per_pass": {"1": 10}},
        "scenario": {},
    }


def _paths(doc, prefix=""):
    """Every (path, container, key) of a nested document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = f"{prefix}.{k}" if prefix else k
            yield p, doc, k
            yield from _paths(v, p)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, f"{prefix}[{i}]")


REQUIRED = [p for p, c, k in _paths(minimal_truth()) if not p.startswith(("scenario", "detector", "background.particle",
            "caldb.files", "counts.hits_per_pass", "sources[0].spectrum.", "sources[0].profile.model"))]  # fmt: skip


def test_minimal_is_valid(tmp_path):
    doc = minimal_truth()
    validate_truth(doc)
    path = write_truth(tmp_path / "truth.json", doc)
    assert read_truth(path) == doc
    # Keys sorted: stable files for golden comparisons.
    assert list(json.loads(path.read_text())) == sorted(doc)


@given(st.sampled_from(REQUIRED))
def test_missing_key_is_named(path):
    doc = minimal_truth()
    for p, container, key in _paths(doc):
        if p == path:
            del container[key]
            break
    with pytest.raises(MXTFormatError) as exc:
        validate_truth(doc)
    assert exc.value.keyword == path


@given(st.sampled_from(REQUIRED), st.sampled_from(["text", [1], {"a": 1}, None, True, float("nan")]))
def test_wrong_type_is_rejected(path, bad):
    doc = minimal_truth()
    for p, container, key in _paths(doc):
        if p == path:
            old = container[key]
            container[key] = bad
            break
    if type(old) is type(bad) and old == old:  # same type is fine, except NaN numbers
        return
    if old is None or (path.endswith(("trigger_time", "slew", "root", ".cxb", ".calibration")) and bad is None):
        return
    with pytest.raises(MXTFormatError) as exc:
        validate_truth(doc)
    assert exc.value.keyword is not None and exc.value.keyword.startswith(path.split("[")[0].split(".")[0])


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda d: d.update(schema="other"), "schema"),
        (lambda d: d.update(schema_version=2), "schema_version"),
        (lambda d: d.update(seed=-1), "seed"),
        (lambda d: d.update(tstop=d["tstart"]), "tstop"),
        (lambda d: d["sources"][0].update(dec=91.0), "sources[0].dec"),
        (lambda d: d["sources"][0].update(flux=-1.0), "sources[0].flux"),
        (lambda d: d["sources"][0].update(flux_band=[10.0, 0.3]), "sources[0].flux_band"),
        (lambda d: d["bad_time"].update(earth=[[2.0, 1.0]]), "bad_time.earth[0]"),
        (lambda d: d["passes"][0].update(stop=0.0), "passes[0].stop"),
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d["pointing"].update(dec=-100.0), "pointing.dec"),
    ],
)
def test_value_checks(mutate, key):
    doc = copy.deepcopy(minimal_truth())
    mutate(doc)
    with pytest.raises(MXTFormatError) as exc:
        validate_truth(doc)
    assert exc.value.keyword == key


def test_read_errors(tmp_path):
    with pytest.raises(MXTFormatError, match="not found"):
        read_truth(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MXTFormatError, match="JSON"):
        read_truth(bad)
