"""The dataset manifest reader: every malformed ``dataset.json`` is refused, naming the file and key."""

from __future__ import annotations

import json

import pytest

from mxt_pipeline.errors import MXTFormatError, MXTInputError
from mxt_pipeline.io.dataset_manifest import MANIFEST_NAME, read_manifest

GOOD = {"obs_id": "00001", "files": {"l1": ["l1/p1.fits"], "att": "aux/att.fits"}}


def _write(tmp_path, content):
    (tmp_path / MANIFEST_NAME).write_text(content if isinstance(content, str) else json.dumps(content))
    return tmp_path


def test_reads_a_valid_manifest(tmp_path):
    assert read_manifest(_write(tmp_path, GOOD)) == GOOD


def test_missing_manifest_names_the_file(tmp_path):
    with pytest.raises(MXTInputError, match="manifest not found") as err:
        read_manifest(tmp_path)
    assert err.value.file.endswith(MANIFEST_NAME)


@pytest.mark.parametrize(
    ("content", "message", "keyword"),
    [
        ("{not json", "not valid JSON", None),
        ([1, 2], "JSON object", None),
        ({"files": GOOD["files"]}, "missing key 'obs_id'", "obs_id"),
        ({"obs_id": "1"}, "missing key 'files'", "files"),
        ({"obs_id": "1", "files": {"l1": "p1.fits", "att": "a"}}, "'l1' list", "files"),
        ({"obs_id": "1", "files": {"l1": []}}, "'l1' list and 'att'", "files"),
    ],
)
def test_malformed_manifest_is_a_format_error(tmp_path, content, message, keyword):
    with pytest.raises(MXTFormatError, match=message) as err:
        read_manifest(_write(tmp_path, content))
    assert err.value.file.endswith(MANIFEST_NAME)
    assert err.value.keyword == keyword
