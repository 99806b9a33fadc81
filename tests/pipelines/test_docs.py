"""docs/pipelines.md: the generated reference is current, every brick and status is there."""

from __future__ import annotations

from mxt_pipeline.pipelines.docgen import DOC_PATH, update_doc
from mxt_pipeline.pipelines.registry import get_pipeline, pipeline_names
from mxt_pipeline.pipelines.status import ProcessingStatus


def test_generated_reference_is_current():
    assert update_doc(check=True), "run: python -m mxt_pipeline.pipelines.docgen"


def test_every_brick_parameter_and_status_is_documented():
    text = DOC_PATH.read_text()
    for name in pipeline_names():
        for brick in get_pipeline(name).bricks:
            assert f"### Brick `{brick.name}`" in text
            for p in brick.params:
                assert f"`{p.name}`" in text
    for s in ProcessingStatus:
        assert f"`{s}`" in text
    for mode in ("X-VHF", "ToO-MM"):
        assert mode in text
