"""``mxt lightcurve L2.fits --srclist SRCLIST.fits --binning snr|blocks|fixed --out DIR``."""

from __future__ import annotations

import re

import click

#: The dash between the two bounds of a band (not the sign of an exponent, ``1e-3``).
_BAND_SEPARATOR = re.compile(r"(?<![eE])-")


def _band(text: str) -> tuple[float, float]:
    """Parse ``'lo-hi'`` (keV; plain or exponent notation) into ``(lo, hi)``."""
    try:
        lo, hi = (float(v) for v in _BAND_SEPARATOR.split(text.strip()))
    except ValueError:
        raise click.BadParameter(f"expected 'lo-hi' in keV, got {text!r}", param_hint="--band") from None
    if not 0 <= lo < hi:
        raise click.BadParameter(f"empty band {text!r}", param_hint="--band")
    return lo, hi


@click.command("lightcurve")
@click.argument("l2", type=click.Path(dir_okay=False))
@click.option("--srclist", required=True, type=click.Path(dir_okay=False), help="Source list (MXT-SOP-SKY).")
@click.option("--binning", type=click.Choice(["snr", "blocks", "fixed"]), default="snr", show_default=True,
              help="Constant S/N bins, Bayesian blocks, or fixed-width bins.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--band", default="0.2-10", show_default=True, help="Energy band in keV, 'lo-hi'.")
@click.option("--bin-width", type=float, default=10.0, show_default=True, help="Width of fixed bins (s).")
@click.option("--snr", "target_snr", type=float, default=3.0, show_default=True, help="S/N of each snr bin.")
@click.option("--min-counts", type=int, default=15, show_default=True, help="Counts of each snr bin, at least.")
@click.option("--max-gap", type=float, default=1000.0, show_default=True,
              help="An snr bin never spans a gap longer than this (s).")
@click.option("--p0", type=float, default=0.05, show_default=True, help="False-alarm probability of the blocks prior.")
@click.option("--errors", "error_method", type=click.Choice(["frequentist", "gehrels", "kbn"]),
              default="frequentist", show_default=True, help="One-sigma errors of the rates.")
@click.option("--dead-time", "dead_time", type=float, default=0.0, show_default=True,
              help="Fraction of each 0.1 s frame lost to readout.")
@click.option("--radius", type=float, default=None, help="Source radius (sky pixels); default from the PSF.")
@click.option("--psf-fraction", type=float, default=None, help="PSF fraction inside --radius.")
@click.option("--trigger", "trigger", type=float, default=None,
              help="GRB trigger time (s since MJDREF): log-log previews of the time since it.")
@click.option("--src-id", "src_ids", type=int, multiple=True, help="Only this source (repeatable).")
@click.option("--no-preview", is_flag=True, help="Do not write the PNG previews.")
def command(l2: str, srclist: str, binning: str, out: str, band: str, bin_width: float, target_snr: float,
            min_counts: int, max_gap: float, p0: float, error_method: str, dead_time: float,
            radius: float | None, psf_fraction: float | None, trigger: float | None,
            src_ids: tuple[int, ...], no_preview: bool) -> None:  # fmt: skip
    """Light curves of every source of SRCLIST from the L2 event file L2, written to OUT.

    One OGIP light curve (MXT_LC: RATE with asymmetric errors and FRACEXP, GTI, GAPS)
    and one PNG preview (gaps shaded with their origin) per source.
    """
    from mxt_pipeline.lightcurve.task import light_curves_from_files

    e_min, e_max = _band(band)
    outputs = light_curves_from_files(
        l2, srclist, out, binning=binning, radius=radius, psf_fraction=psf_fraction,
        trigger_time=trigger, preview=not no_preview, e_min=e_min, e_max=e_max,
        dead_time_fraction=dead_time, error_method=error_method, bin_width=bin_width,
        target_snr=target_snr, min_counts=min_counts, max_gap=max_gap, p0=p0,
        src_ids=list(src_ids) or None,
    )  # fmt: skip
    for o in outputs:
        click.echo(f"source {o.src_id}: {o.n_bins} bins -> {o.product}" + (f" and {o.preview.name}" if o.preview else ""))
    if not outputs:
        click.echo("no source in the list: nothing written")
