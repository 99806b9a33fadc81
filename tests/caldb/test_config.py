"""caldb.config lines: parsing, writing, device expansion."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.caldb.config import (
    CaldbConfigEntry,
    format_config,
    parse_config,
    read_config,
    resolve_device,
    update_config,
    write_config,
)
from mxt_pipeline.errors import MXTCaldbError, MXTFormatError

word = st.text(string.ascii_letters + string.digits + "_./-#", min_size=1, max_size=20).filter(
    lambda w: not w.startswith("#")
)


@given(st.lists(st.builds(CaldbConfigEntry, word, word, word, word, word, word, word), max_size=6))
def test_config_text_round_trips(entries):
    assert parse_config(format_config(entries)) == entries


def test_parse_real_style_file():
    text = """# comment
SWIFT XRT CALDB data/swift/xrt caldb.indx CALDB data/swift/xrt

SVOM MXT CALDB data/svom/mxt caldb.indx CALDB data/svom/mxt   # trailing words are fields
"""
    with pytest.raises(MXTFormatError, match="line 4: 12 fields"):
        parse_config(text)
    entries = parse_config(text.rsplit("   #", 1)[0])
    assert [e.mission for e in entries] == ["SWIFT", "SVOM"]


def test_device_expansion(monkeypatch, tmp_path):
    entry = CaldbConfigEntry.default("SVOM", "MXT")
    monkeypatch.setenv("CALDB", str(tmp_path))
    assert entry.cif_path() == tmp_path / "data/svom/mxt/caldb.indx"
    assert entry.data_path({"CALDB": "/elsewhere"}).as_posix() == "/elsewhere/data/svom/mxt"
    assert resolve_device("/abs/root") .as_posix() == "/abs/root"
    monkeypatch.delenv("CALDB")
    with pytest.raises(MXTCaldbError, match="neither a set environment variable"):
        entry.cif_path()


def test_update_replaces_the_instrument_line(tmp_path):
    path = tmp_path / "software/tools/caldb.config"
    write_config([CaldbConfigEntry.default("SVOM", "ECL")], path)
    update_config(path, CaldbConfigEntry.default("SVOM", "MXT"))
    update_config(path, CaldbConfigEntry("SVOM", "MXT", "CALDB", "data/svom/mxt", "other.indx", "CALDB", "data/svom/mxt"))
    entries = read_config(path)
    assert [(e.instrument, e.cif_file) for e in entries] == [("ECL", "caldb.indx"), ("MXT", "other.indx")]


def test_bad_fields_refused():
    with pytest.raises(MXTFormatError):
        CaldbConfigEntry("SVOM", "MXT", "CALDB", "data svom", "caldb.indx", "CALDB", "x")
    with pytest.raises(MXTFormatError, match="not found"):
        read_config("/nonexistent/caldb.config")
