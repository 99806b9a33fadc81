"""docs/formats.md is generated from the specs: it must match the code."""

from mxt_pipeline.datapaths import REPO_ROOT
from mxt_pipeline.io.docgen import render_formats


def test_formats_doc_matches_specs():
    committed = (REPO_ROOT / "docs" / "formats.md").read_text()
    assert committed == render_formats(), "run: python -m mxt_pipeline.io.docgen"
