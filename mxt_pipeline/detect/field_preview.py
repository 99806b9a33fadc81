"""The field image preview: a counts image with sky axes a person can read.

The figure shows the binned counts image of the L2 sky pixels with

* RA/Dec axes (an astropy WCS of the *binned* image: gnomonic about RA_NOM/DEC_NOM,
  the same tangent plane as the L2 sky X/Y, east to the left);
* a colour bar saying what the colours are (log10 of 1 + counts per bin);
* a scale bar (arcmin) and north/east arrows computed from the WCS at the centre;
* each source circled with its 90% radius (at least three bins, so it stays visible)
  and labelled with its SRC_ID, the trigger position as a cross.

It is drawn on a :class:`matplotlib.figure.Figure` with a ``FigureCanvasAgg`` of its
own: no global backend switch (``matplotlib.use``), so it is safe inside a web
console or a notebook.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mxt_pipeline import constants as C

__all__ = ["FieldSource", "image_wcs", "field_image_figure", "field_image_png"]

#: Sky reference pixel of the L2 X/Y columns (RA_NOM/DEC_NOM).
SKY_REF_PIX = 256.5


@dataclass(frozen=True)
class FieldSource:
    """A source to mark: sky pixel position, 90% radius (arcsec) and label."""

    x: float
    y: float
    r90_arcsec: float
    label: str


def image_wcs(ra_nom: float, dec_nom: float, x0: float, y0: float, bin_pixels: float,
              pixel_arcsec: float = C.PIXEL_SCALE_ARCSEC):  # fmt: skip
    """WCS of a counts image binned by ``bin_pixels`` sky pixels from sky X/Y ``x0``/``y0``.

    Array index ``i`` (0-based) covers sky X from ``x0 + i * bin`` to ``x0 + (i + 1) * bin``;
    sky X grows to the west (RA decreases), Y to the north.
    """
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [float(ra_nom), float(dec_nom)]
    # FITS pixel p (1-based) of the binned image is sky X = x0 + (p - 0.5) * bin.
    w.wcs.crpix = [(SKY_REF_PIX - x0) / bin_pixels + 0.5, (SKY_REF_PIX - y0) / bin_pixels + 0.5]
    scale = pixel_arcsec * bin_pixels / 3600.0
    w.wcs.cdelt = [-scale, scale]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.radesys = "ICRS"
    return w


def _nice_scale_arcmin(width_arcmin: float) -> float:
    """A round scale bar length, about a fifth of the image width."""
    for v in (30.0, 20.0, 10.0, 5.0, 2.0, 1.0, 0.5):
        if v <= width_arcmin / 4.0:
            return v
    return 0.5


def field_image_png(*args, **kwargs) -> bytes:
    """:func:`field_image_figure` as PNG bytes (no software tag: reproducible bytes)."""
    fig = field_image_figure(*args, **kwargs)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def field_image_figure(
    img: np.ndarray,
    x0: float,
    y0: float,
    bin_pixels: float,
    ra_nom: float,
    dec_nom: float,
    *,
    sources: Sequence[FieldSource] = (),
    trigger: tuple[float, float] | None = None,
    title: str = "",
    dpi: int = 100,
    pixel_arcsec: float = C.PIXEL_SCALE_ARCSEC,
):
    """The field image as a :class:`~matplotlib.figure.Figure` (see the module docstring).

    Parameters
    ----------
    img : ndarray
        Counts ``[iy, ix]`` binned by ``bin_pixels`` from sky ``x0``/``y0``.
    ra_nom, dec_nom : float
        Tangent point of the sky pixels (degrees).
    sources : sequence of FieldSource
    trigger : (x, y), optional
        Sky pixel position of the trigger.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    wcs = image_wcs(ra_nom, dec_nom, x0, y0, bin_pixels, pixel_arcsec)
    ny, nx = img.shape
    fig = Figure(figsize=(7.0, 6.2), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.14, 0.1, 0.68, 0.78), projection=wcs)
    shown = np.log10(1.0 + np.asarray(img, float))
    im = ax.imshow(shown, origin="lower", cmap="magma", interpolation="nearest")
    cax = fig.add_axes((0.84, 0.1, 0.03, 0.78))
    cb = fig.colorbar(im, cax=cax)
    cb.set_label(f"log10(1 + counts per {bin_pixels:g}x{bin_pixels:g}-pixel bin)")
    ra, dec = ax.coords[0], ax.coords[1]
    ra.set_axislabel("RA (ICRS)")
    dec.set_axislabel("Dec (ICRS)")
    ra.set_major_formatter("hh:mm:ss")
    dec.set_major_formatter("dd:mm")
    ra.set_ticks(number=4)
    dec.set_ticks(number=5)
    ax.coords.grid(color="white", alpha=0.25, linestyle="dotted")

    def to_img(x: float, y: float) -> tuple[float, float]:
        return (x - x0) / bin_pixels - 0.5, (y - y0) / bin_pixels - 0.5

    for s in sources:
        cx, cy = to_img(s.x, s.y)
        r = max(s.r90_arcsec / (pixel_arcsec * bin_pixels), 3.0)
        ax.add_patch(Circle((cx, cy), r, fill=False, color="cyan", lw=1.2))
        ax.text(cx - 0.8 * r, cy - 0.8 * r, s.label, color="cyan", fontsize=11, fontweight="bold", ha="right", va="top")
    if trigger is not None:
        tx, ty = to_img(*trigger)
        ax.plot([tx], [ty], marker="x", color="lime", ms=10, mew=1.5, ls="none", label="trigger position")
    if sources:
        ax.plot([], [], marker="o", mfc="none", color="cyan", ls="none", label="source (90% radius)")
    if sources or trigger is not None:
        ax.legend(loc="upper right", fontsize=8, framealpha=0.6)

    # Scale bar, bottom left, in image pixels of the binned image.
    arcmin_per_bin = pixel_arcsec * bin_pixels / 60.0
    length = _nice_scale_arcmin(nx * arcmin_per_bin)
    bx, by = 0.06 * nx, 0.06 * ny
    ax.plot([bx, bx + length / arcmin_per_bin], [by, by], color="white", lw=2.5)
    ax.text(bx + 0.5 * length / arcmin_per_bin, by + 0.02 * ny, f"{length:g}'", color="white", ha="center",
            va="bottom", fontsize=9)  # fmt: skip

    # North and east arrows from the WCS at the image centre (top left corner).
    from astropy.coordinates import SkyCoord

    c0 = wcs.pixel_to_world(0.5 * (nx - 1), 0.5 * (ny - 1))
    step = 0.1 * min(nx, ny) * arcmin_per_bin / 60.0  # degrees
    ox, oy = 0.14 * nx, 0.80 * ny
    p0 = np.array(wcs.world_to_pixel(c0))
    arrows = {}
    for name, dra, ddec in (("N", 0.0, step), ("E", step / max(np.cos(np.radians(c0.dec.deg)), 1e-6), 0.0)):
        tip = np.array(wcs.world_to_pixel(SkyCoord(c0.ra.deg + dra, c0.dec.deg + ddec, unit="deg")))
        d = tip - p0
        arrows[name] = (float(d[0]), float(d[1]))
        ax.annotate("", xy=(ox + d[0], oy + d[1]), xytext=(ox, oy),
                    arrowprops={"arrowstyle": "-|>", "color": "white", "lw": 1.5})  # fmt: skip
        ax.text(ox + 1.25 * d[0], oy + 1.25 * d[1], name, color="white", ha="center", va="center", fontsize=10)
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    if title:
        ax.set_title(title, fontsize=9)
    fig.mxt_arrows = arrows  # the N/E directions drawn, in image pixels (tests read them)
    return fig
