"""The Swift-XRT light-curve reader on a synthetic folder in the same format.

The real data are used elsewhere when present (test_grb); these tests make the reader
and the template profile independent of them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxt_pipeline.errors import MXTError, MXTFormatError, MXTInputError
from mxt_pipeline.simulate.cases import grb_scenario
from mxt_pipeline.simulate.timeprofiles import (
    SwiftTemplate,
    choose_swift_template,
    list_swift_templates,
    read_swift_lightcurve,
    swift_grb_table,
)

from .swift_format import write_swift_folder

EVENTS = {"GRB 100101A": 500.0, "GRB 100202B": 800.0}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_swift_folder(tmp_path_factory.mktemp("swift"), EVENTS)


def test_reader_joins_wt_then_pc(folder):
    lc = read_swift_lightcurve("GRB 100101A", folder)
    pc = json.loads((folder / "PC" / "GRB_100101A.json").read_text())
    pc_start = pc["Time"][0] + pc["TimeNeg"][0]
    assert np.all(np.diff(lc.time) > 0)
    assert np.all(lc.time[lc.mode == "WT"] < pc_start)  # WT only before PC starts
    assert np.all(lc.time[lc.mode == "PC"] >= pc_start)
    assert (lc.mode == "PC").sum() == len(pc["Time"])
    np.testing.assert_allclose(lc.time_hi - lc.time_lo, np.asarray(lc.time_hi) - np.asarray(lc.time_lo))
    assert np.all(lc.time_lo < lc.time) and np.all(lc.time < lc.time_hi)
    assert lc.nh_gal == pytest.approx(0.01) and lc.redshift == pytest.approx(1.5)
    assert read_swift_lightcurve("GRB_100202B", folder).redshift is None  # "N/A"


def test_table_listing_and_draw(folder):
    table = swift_grb_table(folder)
    assert set(table) == {"GRB_100101A", "GRB_100202B"}
    assert list_swift_templates(folder, min_bins=20) == ["GRB_100101A", "GRB_100202B"]
    names = {choose_swift_template(np.random.default_rng(s), folder) for s in range(20)}
    assert names == {"GRB_100101A", "GRB_100202B"}
    assert choose_swift_template(np.random.default_rng(3), folder) == choose_swift_template(
        np.random.default_rng(3), folder
    )
    with pytest.raises(MXTInputError):
        choose_swift_template(np.random.default_rng(0), folder, min_bins=1000)


def test_template_reproduces_the_bin_rates(folder):
    lc = read_swift_lightcurve("GRB 100101A", folder)
    prof = SwiftTemplate.from_name("GRB 100101A", trigger_time=1000.0, data_dir=folder)
    np.testing.assert_allclose(prof.value(1000.0 + lc.time), lc.rate, rtol=1e-12)
    assert prof.value(999.0) == 0.0
    late = prof.value(1000.0 + np.array([3e5, 1e6]))
    assert late[1] <= late[0] <= lc.rate[-1] * 1.0000001  # decays after the last bin


def test_grb_case_uses_the_folder(folder):
    sc = grb_scenario(1, template="GRB_100202B", data_dir=folder)
    prof = sc.sources[0].profile
    assert isinstance(prof, SwiftTemplate) and prof.name == "GRB_100202B"
    assert isinstance(grb_scenario(2, template="random", data_dir=folder).sources[0].profile, SwiftTemplate)


def test_missing_data_and_names(tmp_path, folder):
    with pytest.raises(MXTInputError, match="no Swift-XRT light curve"):
        read_swift_lightcurve("GRB 999999", folder)
    assert swift_grb_table(tmp_path) == {}


_KEYS = ("Time", "TimePos", "TimeNeg", "Rate", "RatePos", "RateNeg")


@settings(max_examples=40, deadline=None)
@given(
    drop=st.sampled_from((None, *_KEYS)),
    short=st.sampled_from((None, *_KEYS)),
    bad=st.sampled_from((None, *_KEYS)),
    garbage=st.booleans(),
)
def test_malformed_files_are_refused_naming_the_file(tmp_path_factory, drop, short, bad, garbage):
    root = write_swift_folder(tmp_path_factory.mktemp("bad"), {"GRB 200101A": 500.0})
    path = root / "PC" / "GRB_200101A.json"
    doc = json.loads(path.read_text())
    if drop:
        del doc[drop]
    if short and short in doc:
        doc[short] = doc[short][:-1]
    if bad and bad in doc:
        doc[bad][0] = "x"
    path.write_text("{not json" if garbage else json.dumps(doc))
    broken = garbage or drop or short or bad
    if not broken:
        assert read_swift_lightcurve("GRB 200101A", root).time.size > 20
        return
    with pytest.raises(MXTFormatError) as info:
        read_swift_lightcurve("GRB 200101A", root)
    assert isinstance(info.value, MXTError) and "GRB_200101A.json" in str(info.value)
