"""File-level light-curve task: L2 events and a source list in, products and previews out.

The thin I/O shell around :func:`~mxt_pipeline.lightcurve.extract.extract_light_curves`:
read the L2 event file (``MXT_L2_EVT``) and the source list (``MXT_SOP_SKY``) through the
I/O layer, make one light curve per source, write each as an ``MXT_LC`` product and a
PNG preview beside it.  ``mxt lightcurve`` calls it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io import atomic_write_bytes, read_product
from mxt_pipeline.io.lightcurve_product import light_curve_filename, write_light_curve
from mxt_pipeline.io.products import read_events
from mxt_pipeline.lightcurve.extract import extract_light_curves, source_region
from mxt_pipeline.lightcurve.preview import figure_png, plot_light_curve

__all__ = ["LightCurveOutput", "light_curves_from_files"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LightCurveOutput:
    """What was written for one source."""

    src_id: int
    product: Path
    preview: Path | None
    n_bins: int


def light_curves_from_files(
    l2_path: str | os.PathLike[str],
    srclist_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    binning: str = "snr",
    psf: Any = None,
    radius: float | None = None,
    psf_fraction: float | None = None,
    trigger_time: float | None = None,
    preview: bool = True,
    **options: Any,
) -> list[LightCurveOutput]:
    """Make, write and preview the light curves of every listed source.

    Parameters
    ----------
    l2_path : path-like
        L2 event file (``MXT_L2_EVT``).
    srclist_path : path-like
        Source list (``MXT_SOP_SKY``).
    out_dir : path-like
        Folder for ``mxt_lc_<OBS_ID>_src<SRC_ID>.fits`` and ``.png`` (created).
    binning : {'snr', 'fixed', 'blocks'}
        Binning method.
    psf, radius, psf_fraction
        Source-region sizing (see :func:`~mxt_pipeline.lightcurve.extract.source_region`).
    trigger_time : float, optional
        GRB trigger (s since MJDREF): stored as TRIGTIME, log-log previews.
    preview : bool
        Write the PNG previews.
    **options
        Passed to :func:`~mxt_pipeline.lightcurve.extract.extract_light_curves`
        (band, dead time, error method, binning options).

    Returns
    -------
    list of LightCurveOutput
    """
    events = read_events(l2_path)
    srclist = read_product(srclist_path, "MXT_SOP_SKY").table("SRCLIST")
    if len(srclist) == 0:
        log.warning("%s lists no source: no light curve made", srclist_path)
        return []
    if len(events.table) == 0:
        raise MXTInputError("the event list is empty", file=l2_path, hdu="EVENTS")
    region = source_region(psf, radius=radius, psf_fraction=psf_fraction)
    curves = extract_light_curves(events, srclist, binning_method=binning, region=region, **options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for lc in curves:
        if trigger_time is not None:
            lc.meta["TRIGTIME"] = float(trigger_time)
        lc.meta.setdefault("OBS_ID", events.meta.get("OBS_ID", "unknown"))
        path = write_light_curve(out / light_curve_filename(lc), lc)
        png = None
        if preview:
            png = path.with_suffix(".png")
            atomic_write_bytes(png, figure_png(plot_light_curve(lc)))
        log.info("source %s: %d bins -> %s", lc.meta["SRC_ID"], len(lc), path)
        written.append(LightCurveOutput(int(lc.meta["SRC_ID"]), path, png, len(lc)))
    return written
