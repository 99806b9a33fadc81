"""Scenario files: YAML round trip, presets, errors naming the key."""

from __future__ import annotations

import pytest
import yaml

from mxt_pipeline.datapaths import swift_xrt_dir
from mxt_pipeline.errors import MXTFormatError, MXTInputError
from mxt_pipeline.io.simulated_dataset import load_scenario, write_scenario
from mxt_pipeline.simulate.cases import gp_scenario, grb_scenario, make_case, montecarlo_scenario
from mxt_pipeline.simulate.scenario import dump_scenario, scenario_from_dict

BASE = {
    "obs_id": "SIM1",
    "tstart": 3.0e8,
    "duration": 2000.0,
    "pointing": {"ra": 10.0, "dec": -20.0},
    "sources": [
        {"name": "A", "ra": 10.0, "dec": -20.0, "flux": 1e-11, "spectrum": {"model": "powerlaw", "index": 2, "nh": 0.1}},
        {"name": "B", "ra": 10.2, "dec": -20.1, "flux": 1e-12, "spectrum": {"model": "blackbody", "kt": 0.3},
         "profile": {"model": "periodic", "period": 300, "amplitude": 0.5}},
    ],
    "background": {"cxb": False, "calibration": {"lines": [{"energy": 1.487, "rate": 2.0}]}},
    "passes": {"mode": "explicit", "passes": [{"start": 3.0e8, "stop": 3.0e8 + 2000.0}]},
}


def test_round_trip_through_yaml(tmp_path):
    sc = scenario_from_dict(BASE)
    assert sc.cxb is None and sc.particle is not None and sc.calibration is not None
    path = write_scenario(sc, tmp_path / "s.yaml")
    text = path.read_text(encoding="utf-8")
    assert text == dump_scenario(sc)
    again = load_scenario(path)
    assert again.to_dict() == sc.to_dict()
    assert yaml.safe_load(text)["sources"][1]["profile"]["model"] == "periodic"
    assert sc.orbit.epoch == 3.0e8  # the orbit epoch defaults to the start


@pytest.mark.parametrize(
    "patch, key",
    [
        ({"duraton": 10}, "duraton"),
        ({"pointing": {"ra": 1.0}}, "pointing.dec"),
        ({"pointing": {"ra": 1.0, "dec": 0.0, "jiter": 1}}, "jiter"),
        ({"background": {"cbx": {}}}, "cbx"),
        ({"background": {"cxb": {"index": 1.4, "foo": 1}}}, "foo"),
        ({"sources": [{"name": "A", "ra": 0, "dec": 0, "spectrum": {"model": "powerlaw"}}]}, "flux"),
        ({"sources": [{"name": "A", "ra": 0, "dec": 0, "flux": 1, "spectrum": {"model": "powerlaw"}, "colour": 1}]},
         "colour"),
        ({"passes": {"mode": "sometimes"}}, "mode"),
        ({"detector": {"threshold": 1}}, "threshold"),
        ({"orbit": {"altitude_km": 1.0}}, "altitude_km"),
    ],
)
def test_errors_name_the_key(patch, key):
    d = {**BASE, **patch}
    with pytest.raises(MXTInputError) as exc:
        scenario_from_dict(d)
    assert exc.value.keyword == key


def test_duplicate_source_names_and_bad_values():
    d = {**BASE, "sources": [BASE["sources"][0], BASE["sources"][0]]}
    with pytest.raises(MXTInputError, match="distinct"):
        scenario_from_dict(d)
    with pytest.raises(MXTInputError):
        scenario_from_dict({**BASE, "duration": 0.1})
    with pytest.raises(MXTInputError):
        scenario_from_dict({**BASE, "obs_id": "a b"})


def test_file_errors(tmp_path):
    with pytest.raises(MXTFormatError, match="not found"):
        load_scenario(tmp_path / "none.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("a: [1, 2\n")
    with pytest.raises(MXTFormatError, match="YAML"):
        load_scenario(p)
    p.write_text("obs_id: X\n")
    with pytest.raises(MXTInputError) as exc:
        load_scenario(p)
    assert exc.value.file == str(p)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_presets_are_reproducible_and_round_trip(seed):
    for make in (lambda s: grb_scenario(s, template=None), lambda s: gp_scenario(s, n_sources=3), montecarlo_scenario):
        a, b = make(seed), make(seed)
        assert a.to_dict() == b.to_dict()
        assert scenario_from_dict(yaml.safe_load(dump_scenario(a))).to_dict() == a.to_dict()


def test_gp_sources_in_and_out_of_field():
    from mxt_pipeline.datamodel import pointing_rotation
    from mxt_pipeline.geometry import radec_to_instrument, vectors_to_angles

    sc = gp_scenario(4, n_sources=3, out_of_field=[True, False])
    rot = pointing_rotation(sc.pointing.ra, sc.pointing.dec, sc.pointing.roll)
    ay, az = vectors_to_angles(radec_to_instrument([s.ra for s in sc.sources], [s.dec for s in sc.sources], rot))
    off = abs(ay) > 29.0
    off |= abs(az) > 29.0
    assert off.tolist() == [False, True, False]
    with pytest.raises(MXTInputError):
        gp_scenario(1, n_sources=4)
    with pytest.raises(MXTInputError):
        make_case("nope", 1)


@pytest.mark.skipif(swift_xrt_dir() is None, reason="Swift-XRT light curves not available")
def test_grb_template_preset():
    sc = grb_scenario(1, template="GRB_061121")
    src = sc.sources[0]
    assert src.profile.MODEL == "swift_xrt" and src.flux == 4.0e-11
    assert src.spectrum.nh == pytest.approx(0.0463)
    rnd = grb_scenario(5, template="random")
    assert rnd.sources[0].profile.MODEL == "swift_xrt"
    assert rnd.to_dict() == grb_scenario(5, template="random").to_dict()


def test_named_template_without_data_falls_back_to_analytic(tmp_path, monkeypatch):
    monkeypatch.setenv("MXT_SWIFT_XRT_DATA", str(tmp_path))
    monkeypatch.setattr("mxt_pipeline.datapaths.REPO_ROOT", tmp_path / "x" / "y")
    # Without data, a named template and 'random' both give the analytic afterglow (README).
    assert grb_scenario(1, template="GRB_061121").to_dict() == grb_scenario(1, template=None).to_dict()
    assert grb_scenario(1, template="random").sources[0].profile.MODEL == "grb"
    # A folder named explicitly that holds no light curves is a mistake, not a fallback.
    with pytest.raises(MXTInputError, match="holds no Swift-XRT light curves"):
        grb_scenario(1, template="GRB_061121", data_dir=tmp_path)


def test_yaml_exponents_read_as_strings_are_numbers(tmp_path):
    """YAML 1.1 reads ``3.0e8`` (no sign in the exponent) as a string: numeric fields take
    it as the number it spells, and a non-number is refused naming its key."""
    d = yaml.safe_load(dump_scenario(gp_scenario(1)))
    d["orbit"]["epoch"] = "3.0e8"  # the key exists in every scenario
    text = yaml.safe_dump(d)
    assert isinstance(yaml.safe_load(text)["orbit"]["epoch"], str)  # what YAML makes of it
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert load_scenario(path).orbit.epoch == 3.0e8
    path.write_text(text.replace("3.0e8", "soon"))
    with pytest.raises(MXTInputError, match="epoch"):
        load_scenario(path)
