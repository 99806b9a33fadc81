"""Brick ``image_preview``: a counts image of the field in sky coordinates with the sources.

The image is the 2-D histogram of the sky X/Y of the events used for imaging (the
selection of the detection: good STATUS, valid patterns, inside the GTI), in an
energy band, binned by ``bin_pixels`` sky pixels, shown on a logarithmic scale.  Each
detected source is circled with its 90% radius (drawn no smaller than three image
bins so it stays visible) and labelled with its SRC_ID; the trigger position of XBAND-CP
is marked with a cross.  Sky pixels follow the L2 convention: tangent plane about
RA_NOM/DEC_NOM, reference pixel 256.5, ``constants.PIXEL_SCALE_ARCSEC`` per pixel, X
increasing towards the west (east to the left, as on the sky).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mxt_pipeline.detect.field_preview import FieldSource, field_image_png
from mxt_pipeline.detect.images import select_events
from mxt_pipeline.geometry import radec_to_sky
from mxt_pipeline.io.fits import met_to_isot
from mxt_pipeline.pipelines.brick import Brick, CoreResult
from mxt_pipeline.pipelines.bricks.codecs import L2_EVENTS, SRCLIST, png_codec
from mxt_pipeline.pipelines.parameters import Parameter
from mxt_pipeline.pipelines.ports import MEMORY, Port

__all__ = ["IMAGE_PREVIEW", "sky_image", "image_preview_core"]

#: Sky reference pixel of the L2 X/Y columns.
REF_PIX = 256.5


def sky_image(x: np.ndarray, y: np.ndarray, half_width: float, bin_pixels: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts image ``[iy, ix]`` of sky positions in a square about the reference pixel.

    Returns the image and the bin edges along X and Y.
    """
    n = max(1, int(np.ceil(2 * half_width / bin_pixels)))
    edges = REF_PIX - half_width + bin_pixels * np.arange(n + 1)
    img, _, _ = np.histogram2d(np.asarray(y, float), np.asarray(x, float), bins=(edges, edges))
    return img, edges, edges


def image_preview_core(inputs: dict[str, Any], params, cal) -> CoreResult:
    """Render the field image with the sources as PNG bytes (pure).

    The figure itself (WCS axes, colour bar, scale bar, N/E arrows) is drawn by
    :func:`mxt_pipeline.detect.field_preview.field_image_png`.
    """
    events = inputs["events"]
    src = inputs["srclist"]
    target = inputs.get("target")
    keep = select_events(events) if len(events) else np.zeros(0, bool)
    e = np.asarray(events["ENERGY"], float) if len(events) else np.zeros(0)
    keep &= (e >= params.e_min) & (e < params.e_max)
    x, y = np.asarray(events["X"], float)[keep], np.asarray(events["Y"], float)[keep]
    img, xe, ye = sky_image(x, y, params.half_width_pixels, params.bin_pixels)
    table = src.table
    sources = [FieldSource(float(r["X"]), float(r["Y"]), float(r["ERR_R90"]), str(int(r["SRC_ID"]))) for r in table]
    ra_nom, dec_nom = float(events.meta.get("RA_NOM", 0.0)), float(events.meta.get("DEC_NOM", 0.0))
    trigger = None
    bp = getattr(target, "burst_position", None)
    if bp is not None and "RA_NOM" in events.meta:
        tx, ty = radec_to_sky(np.array([bp.ra]), np.array([bp.dec]), ra_nom, dec_nom)
        trigger = (float(tx[0]), float(ty[0]))
    when = met_to_isot(events.gti.tstart) if len(events.gti) else "no good time"
    title = (f"MXT {events.meta.get('OBS_ID', '')} {events.meta.get('OBJECT', '') or ''}\n"
             f"{params.e_min:g}-{params.e_max:g} keV, {int(keep.sum())} events, {events.gti.exposure:.0f} s good time, "
             f"from {when} TT")  # fmt: skip
    png = field_image_png(img, float(xe[0]), float(ye[0]), params.bin_pixels, ra_nom, dec_nom, sources=sources,
                          trigger=trigger, title=title, dpi=params.dpi)  # fmt: skip
    return CoreResult({"image_preview": png}, metrics={"n_events_shown": int(keep.sum()), "n_sources": len(table)})


IMAGE_PREVIEW = Brick(
    name="image_preview",
    summary="counts image of the field in sky coordinates with the detected sources (PNG)",
    core=image_preview_core,
    inputs=(
        Port("events", L2_EVENTS, "L2 events"),
        Port("srclist", SRCLIST, "source list"),
        Port("target", MEMORY, "the {target} (trigger position)", optional=True),
    ),
    outputs=(Port("image_preview", png_codec("mxt_img_{obs_id}.png"), "field image with the sources"),),
    params=(
        Parameter("e_min", float, 0.2, "lower energy of the image (keV)", minimum=0.0),
        Parameter("e_max", float, 10.0, "upper energy of the image (keV)", minimum=0.0),
        Parameter("bin_pixels", float, 2.0, "image bin in sky pixels", minimum=0.25, maximum=64.0),
        Parameter("half_width_pixels", float, 160.0, "half width of the image about the reference pixel", minimum=8.0),
        Parameter("dpi", int, 100, "resolution of the PNG", minimum=30, maximum=300),
    ),
    critical=False,
)
