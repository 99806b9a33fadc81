"""Generate the reference part of ``docs/pipelines.md`` from the code.

The bricks (inputs, outputs, parameters, CALDB code names), the pipelines, the
``runtime_data.json`` schema and the status table are rendered from the objects
themselves, between two markers of ``docs/pipelines.md``; the text around them is
written by hand.  ``python -m mxt_pipeline.pipelines.docgen`` rewrites the generated
part; a test fails when it is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mxt_pipeline.pipelines.brick import Brick
from mxt_pipeline.pipelines.registry import get_pipeline, pipeline_names
from mxt_pipeline.pipelines.runtime import runtime_schema
from mxt_pipeline.pipelines.status import EXIT_CODES, ProcessingStatus

__all__ = ["BEGIN", "END", "generated_reference", "update_doc", "DOC_PATH"]

BEGIN = "<!-- BEGIN GENERATED REFERENCE: python -m mxt_pipeline.pipelines.docgen -->"
END = "<!-- END GENERATED REFERENCE -->"
DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "pipelines.md"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _brick_section(brick: Brick, seen_in: list[str]) -> list[str]:
    d = brick.describe()
    flags = []
    if not brick.critical:
        flags.append("non-critical (a failure makes the run PARTIAL)")
    if brick.early:
        flags.append("fast product (published in `OUT/fast/` at once)")
    out = [f"### Brick `{brick.name}`", "", d["summary"] + ".", ""]
    out.append(f"- pipelines: {', '.join(seen_in)}")
    out.append(f"- CALDB code names: {', '.join(f'`{c}`' for c in d['caldb']) or 'none'}")
    if flags:
        out.append(f"- {'; '.join(flags)}")
    out += ["", "| | port | kind | file | description |", "|---|---|---|---|---|"]
    for kind, ports in (("in", d["inputs"]), ("out", d["outputs"])):
        for p in ports:
            opt = " (optional)" if p["optional"] else ""
            many = " (one per key)" if p["many"] else ""
            out.append(f"| {kind} | `{p['name']}`{opt} | {p['kind']}{many} | {_cell(p['file'] or '-')} | {_cell(p['doc'])} |")
    if d["params"]:
        out += ["", "| parameter | type | default | allowed | description |", "|---|---|---|---|---|"]
        for p in d["params"]:
            allowed = []
            if "choices" in p:
                allowed.append(" / ".join(map(str, p["choices"])))
            if "minimum" in p:
                allowed.append(f">= {p['minimum']}")
            if "maximum" in p:
                allowed.append(f"<= {p['maximum']}")
            if p.get("nullable"):
                allowed.append("null")
            out.append(
                f"| `{p['name']}` | {p['type']} | `{p['default']!r}` | {_cell(', '.join(allowed) or '-')} | {_cell(p['doc'])} |"
            )
    return out + [""]


def _schema_rows(schema: dict[str, Any], path: str = "", required: bool = True) -> list[str]:
    rows = []
    props = schema.get("properties", {})
    req = set(schema.get("required", []))
    for name, sub in props.items():
        key = f"{path}.{name}" if path else name
        typ = sub.get("type", "")
        if "enum" in sub:
            typ = f"{typ} ({' / '.join(map(str, sub['enum']))})"
        rule = []
        for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "pattern"):
            if k in sub:
                rule.append(f"{k} {sub[k]}")
        rows.append(f"| `{key}` | {_cell(typ)} | {'yes' if name in req else 'no'} | {_cell(', '.join(rule) or '-')} "
                    f"| {_cell(sub.get('description', ''))} |")  # fmt: skip
        if sub.get("type") == "object" and "properties" in sub:
            rows += _schema_rows(sub, key)
        if sub.get("type") == "array" and isinstance(sub.get("items"), dict) and "properties" in sub["items"]:
            rows += _schema_rows(sub["items"], key + "[]")
    return rows


def generated_reference() -> str:
    """The generated Markdown (without the markers)."""
    lines: list[str] = ["## Reference (generated)", ""]
    pipes = [get_pipeline(n) for n in pipeline_names()]
    variants = [(p, "") for p in pipes] + [(get_pipeline(n, telemetry=True), " (telemetry inputs)") for n in pipeline_names()]
    lines += ["### Pipelines", "", "| pipeline | bricks, in order | CALDB code names |", "|---|---|---|"]
    for p, what in variants:
        lines.append(f"| `{p.name}`{what} | {' -> '.join(f'`{b.name}`' for b in p.bricks)} | {', '.join(p.caldb_codes)} |")
    lines.append("")
    pipes = [p for p, _ in variants]
    bricks: dict[str, tuple[Brick, list[str]]] = {}
    for p in pipes:
        for b in p.bricks:
            seen = bricks.setdefault(b.name, (b, []))[1]
            if p.name not in seen:
                seen.append(p.name)
    for brick, seen in bricks.values():
        lines += _brick_section(brick, seen)
    lines += ["### `runtime_data.json` keys", "",
              "The schema file is `mxt_pipeline/pipelines/runtime_data.schema.json` (JSON Schema 2020-12).", "",
              "| key | type | required | rules | description |", "|---|---|---|---|---|"]  # fmt: skip
    schema = runtime_schema()
    lines += _schema_rows(schema)
    lines.append("")
    lines += ["`inputs` needs either `dataset` or both `l1` and `att`.", ""]
    lines += ["### Processing statuses and exit codes", "", "| status | exit code |", "|---|---|"]
    lines += [f"| `{s}` | {EXIT_CODES[s] if s is not ProcessingStatus.RUNNING else '- (in progress)'} |" for s in ProcessingStatus]
    return "\n".join(lines) + "\n"


def update_doc(path: Path = DOC_PATH, *, check: bool = False) -> bool:
    """Rewrite the generated part of the doc; with ``check``, only say whether it is current."""
    text = path.read_text(encoding="utf-8")
    i, j = text.index(BEGIN) + len(BEGIN), text.index(END)
    new = text[:i] + "\n" + generated_reference() + text[j:]
    if check:
        return new == text
    if new != text:
        path.write_text(new, encoding="utf-8")
    return True


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0 if update_doc(check="--check" in sys.argv) else 1)
