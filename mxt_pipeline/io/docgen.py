"""Generate ``docs/formats.md`` from the registered product specs.

``python -m mxt_pipeline.io.docgen [OUT]`` writes the document; a test checks that the
committed file equals the generated one, so the documentation cannot drift from the
code that enforces it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mxt_pipeline.io.formats import REGISTRY
from mxt_pipeline.io.spec import ProductSpec

__all__ = ["render_formats"]

_HEADER = """# MXT product formats

Generated from `mxt_pipeline/io/formats.py` by `python -m mxt_pipeline.io.docgen`;
do not edit by hand. Every product is checked against this by `mxt validate` and by the
readers of `mxt_pipeline.io`.

Conventions shared by every product (OGIP/93-003, OGIP/94-001):

- `TELESCOP='SVOM'`, `INSTRUME='MXT'`, `ORIGIN`, `CREATOR`, `DATE`, `CHECKSUM`, `DATASUM`
  in every HDU; `CONTENT` in the primary header names the product type.
- Time: TT seconds since `MJDREFI=57754` + `MJDREFF=0` (2017-01-01T00:00:00 TT);
  `TIMESYS='TT'`, `TIMEUNIT='s'`, `TIMEREF='LOCAL'`, `TASSIGN='SATELLITE'`; `TSTART`,
  `TSTOP`, `TELAPSE`, `DATE-OBS`, `DATE-END` (TT) in the primary and every timed HDU.
- `HDUCLASS='OGIP'` with `HDUCLAS1`/`HDUCLAS2` per extension.
- Integer columns carry their legal limits as `TLMINn`/`TLMAXn`.
- Products are written atomically (temporary file, then rename).
- Detector geometry: 256 x 256 pixels of 75 um; RAWY is the column (one amplifier
  each: gain and offset depend on RAWY), RAWZ the row (charge is transferred along the
  column towards RAWZ = -1: a hit at row RAWZ sees RAWZ + 1 transfers).
- Attitude: `QPARAM = (x, y, z, w)` (scalar last) rotates instrument-frame vectors into
  ICRS; the boresight is +X, +Y and +Z are the DETY and DETZ directions; ROLL is the
  position angle of +Z, from north through east.
"""


def _fmt(value: object) -> str:
    return "" if value is None else str(value)


def render_product(spec: ProductSpec) -> str:
    """Markdown section of one product."""
    out = [f"## {spec.title} (`CONTENT='{spec.content}'`)", "", spec.description, ""]
    if spec.filename:
        out += [f"File name: `{spec.filename}`", ""]
    if spec.primary_keywords:
        out += ["Primary header keywords:", "", "| keyword | type | required | meaning |", "| --- | --- | --- | --- |"]
        for k in spec.primary_keywords:
            out.append(f"| `{k.name}` | {k.type.__name__} | {'yes' if k.required else 'no'} | {k.comment} |")
        out.append("")
    for h in spec.hdus:
        out += [f"### HDU `{h.extname}`{'' if h.required else ' (optional)'}", "", h.description, ""]
        if h.columns:
            out += [
                "| column | TFORM | unit | range / values | meaning |",
                "| --- | --- | --- | --- | --- |",
            ]
            for c in h.columns:
                rng = []
                if c.tlmin is not None or c.tlmax is not None:
                    rng.append(f"{_fmt(c.tlmin)}..{_fmt(c.tlmax)}")
                if c.allowed is not None and c.is_string:
                    rng.append(", ".join(map(str, c.allowed)))
                if c.sorted:
                    rng.append("sorted")
                if c.is_float and c.finite:
                    rng.append("finite")
                out.append(
                    f"| `{c.name}` | {c.tform} | {_fmt(c.unit)} | {'; '.join(rng)} | {c.description} |"
                )
            out.append("")
        if h.keywords:
            out += ["| keyword | type | value | meaning |", "| --- | --- | --- | --- |"]
            for k in h.keywords:
                val = k.value if k.value is not None else (", ".join(map(str, k.allowed)) if k.allowed else "")
                out.append(f"| `{k.name}` | {k.type.__name__} | {val} | {k.comment} |")
            out.append("")
    return "\n".join(out)


def render_formats() -> str:
    """The whole ``docs/formats.md`` text."""
    sections = [_HEADER]
    for content in REGISTRY:
        sections.append(render_product(REGISTRY[content]))
    try:
        from mxt_pipeline.io import truth

        sections.append(truth.render_doc())
    except (ImportError, AttributeError):
        pass
    from mxt_pipeline.io import telemetry_stream

    sections.append(telemetry_stream.render_doc())
    return "\n".join(sections).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "docs" / "formats.md"
    out.write_text(render_formats())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
