"""The configuration file of the checkout is complete and sane."""

from __future__ import annotations

import pytest

from harness.config import load_config


def test_config_sections(config):
    assert {"DATE", "CREATOR", "CHECKSUM", "DATASUM"} <= set(config.ignore_keywords)
    assert config.keyword_ignored("date") and not config.keyword_ignored("OBS_ID")
    # Mission times get an absolute tolerance, never a relative one.
    tol, explicit = config.tolerances.resolve("MXT_L2_EVT", "EVENTS", "TIME")
    assert explicit and tol.rtol == 0 and tol.atol <= 1e-5
    assert 0 < config.timing["max_slowdown"] <= 0.25
    assert config.coverage["max_drop"] == 0.5
    assert set(config.ensemble["thresholds"]) and config.localization["r90_factor"] == 1.0
    required = {"grb_bright", "grb_faint", "three_sources", "empty_field", "passes_out_of_order", "saa_crossing",
                "calibration_lines"}  # fmt: skip
    assert required <= set(config.golden["sets"])
    assert config.golden["max_total_mb"] <= 30


def test_bad_config(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(p)
    p.write_text("fitsdiff: {default: {rtol: -1}}\n")
    with pytest.raises(ValueError):
        load_config(p)


def test_science_section_names_declared_sets_and_known_checks(config):
    from harness.science import CHECKS

    science = config.raw["science"]
    assert set(config.golden["sets"]) <= set(science["datasets"])
    for name, checks in science["datasets"].items():
        assert name in config.golden["sets"], name
        assert checks and set(checks) <= set(CHECKS), (name, checks)
    # Every check of a listed dataset states its tolerance in the file.
    listed = {c for checks in science["datasets"].values() for c in checks}
    assert listed - {"lc_exposure"} <= set(science), sorted(listed - set(science))
