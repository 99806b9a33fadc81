"""``mxt compare RUN_DIR``: what the pipeline measured against what was simulated.

RUN_DIR holds (anywhere below it) the simulation's ``truth.json`` and the pipeline's
products: the source list ``mxt_sop_sky_*.fits`` (required), the light curves
``mxt_lc_*_src*.fits`` and the L2 events ``mxt_l2_evt_*.fits`` (optional; the events
give the calibration-line residuals).  A campaign run folder, a ``mxt simulate``
dataset with the ``mxt run`` output below it, or any folder laid out so, will do; each
file can also be named by an option.  When several pipeline outputs lie below RUN_DIR
(``mxt run`` into one ``out/`` for several datasets), the one of the truth's OBS_ID is
taken, and among its versions the one ``latest.json`` points at.  Writes
``compare.json``, ``compare_sources.ecsv`` and the plots in ``--out`` and prints the
tables and a verdict per quantity.

A published collection (a folder with ``manifest.json``) is never written to: by
default the comparison goes *beside* the collection holding the source list, in
``compare_<collection>/``, else in ``RUN_DIR/compare``; an ``--out`` inside a
collection is refused.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import click
import numpy as np

from mxt_pipeline.errors import MXTInputError

__all__ = ["command", "find_products"]


def _one(root: Path, pattern: str, what: str, required: bool) -> Path | None:
    found = sorted(root.rglob(pattern))
    if not found:
        if required:
            raise MXTInputError(f"no {what} ({pattern}) below the run folder", file=root)
        return None
    if len(found) > 1:
        raise MXTInputError(f"several {what} files below the run folder ({', '.join(map(str, found[:4]))}); "
                            "name one with its option", file=root)  # fmt: skip
    return found[0]


def collection_of(path: str | Path) -> Path | None:
    """The published collection (folder holding ``manifest.json``) ``path`` lies in, or None."""
    from mxt_pipeline.pipelines.collection import MANIFEST

    for folder in Path(path).absolute().parents:
        if (folder / MANIFEST).is_file():
            return folder
    return None


def _product_root(root: Path, truth_path: object) -> Path:
    """The folder to look for products in: RUN_DIR, or the one collection of the truth's OBS_ID.

    ``mxt run`` writes the collections of every dataset it processed side by side in
    one output folder; the truth names the observation, and ``latest.json`` the
    version to take when the observation was processed several times.
    """
    import json

    from mxt_pipeline.pipelines.collection import MANIFEST

    if truth_path is None or len(list(root.rglob("mxt_sop_sky_*.fits"))) <= 1:
        return root
    try:
        obs_id = str(json.loads(Path(str(truth_path)).read_text())["obs_id"])
    except (OSError, ValueError, KeyError):
        return root
    mine = sorted({p.parent for p in root.rglob(f"mxt_sop_sky_{obs_id}.fits") if (p.parent / MANIFEST).is_file()})
    if len(mine) == 1:
        return mine[0]
    for pointer in sorted(root.rglob("latest.json")):
        try:
            names = set(json.loads(pointer.read_text()).values())
        except (OSError, ValueError, AttributeError):
            continue
        chosen = [c for c in mine if c.name in names]
        if len(chosen) == 1:
            return chosen[0]
    return root


def find_products(run_dir: str | Path, given: dict[str, object] | None = None) -> dict[str, object]:
    """The files of a run folder: ``truth``, ``srclist``, ``events`` (or None), ``lcs`` (list).

    Files already ``given`` (by option) are kept and not looked for.  With several
    pipeline outputs below ``run_dir``, the products are taken from the collection of
    the truth's OBS_ID (see :func:`_product_root`).
    """
    root = Path(run_dir)
    given = given or {}
    truth = given.get("truth") or _one(root, "truth.json", "truth file", True)
    prod = _product_root(root, truth)
    found: dict[str, object] = {
        "truth": truth,
        "srclist": given.get("srclist") or _one(prod, "mxt_sop_sky_*.fits", "source list", True),
        "events": given.get("events") or _one(prod, "mxt_l2_evt_*.fits", "L2 event list", False),
        "lcs": list(given.get("lcs") or []) or sorted(prod.rglob("mxt_lc_*_src*.fits")),
    }
    return found


def output_folder(root: Path, srclist: object, out_dir: str | None) -> Path:
    """Where the comparison goes: ``out_dir``, else beside the collection, else ``root/compare``.

    Raises
    ------
    MXTInputError
        ``out_dir`` lies inside a published collection.
    """
    if out_dir:
        inside = collection_of(Path(out_dir) / "x")
        if inside is not None:
            raise MXTInputError(f"--out {out_dir} lies inside the published collection {inside.name}, which is never "
                                "modified after publication; choose a folder outside it (the default is beside it)")  # fmt: skip
        return Path(out_dir)
    coll = collection_of(Path(str(srclist)))
    if coll is not None:
        return coll.parent / f"compare_{coll.name}"
    coll = collection_of(root / "x")
    return root.parent / f"compare_{root.name}" if coll is not None else root / "compare"


def _fmt(v, spec: str = ".1f") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, spec)


def _source_table(result):
    from astropy.table import Table

    rows = result["sources"]
    lc = [r["light_curve"] or {} for r in rows]
    return Table(
        {
            "NAME": [str(r["name"]) for r in rows],
            "IN_FOV": [r["in_fov"] for r in rows],
            "DETECTABLE": [r["detectable"] for r in rows],
            "FOUND": [r["found"] for r in rows],
            "SRC_ID": [r["src_id"] if r["src_id"] is not None else 0 for r in rows],
            "TRUE_RA": [r["true_ra"] for r in rows],
            "TRUE_DEC": [r["true_dec"] for r in rows],
            "OFFAXIS": [r["offaxis_arcmin"] for r in rows],
            "TRUE_CTS": [r["true_counts"] for r in rows],
            "OFFSET": [np.nan if r["offset_arcsec"] is None else r["offset_arcsec"] for r in rows],
            "ERR_R90": [np.nan if r["err_r90_arcsec"] is None else r["err_r90_arcsec"] for r in rows],
            "OFF_R90": [np.nan if r["offset_r90"] is None else r["offset_r90"] for r in rows],
            "CTS_RATIO": [np.nan if r["counts_ratio"] is None else r["counts_ratio"] for r in rows],
            "DET_ML": [np.nan if r["det_ml"] is None else r["det_ml"] for r in rows],
            "LC_CHI2R": [c.get("chi2_red", np.nan) for c in lc],
            "LC_PVALUE": [c.get("pvalue", np.nan) for c in lc],
        }
    )


def render_text(result) -> str:
    """The comparison as plain-text tables."""
    head = ("name", "fov", "found", "id", 'offset"', 'R90"', "off/R90", "true cts", "ratio", "DET_ML", "LC chi2r")
    widths = (22, 4, 6, 4, 9, 7, 8, 10, 12, 8, 9)
    out = ["Sources (simulated -> found)",
           "  " + head[0].ljust(widths[0]) + "".join(h.rjust(w) for h, w in zip(head[1:], widths[1:]))]
    for r in result["sources"]:
        ratio = "-" if r["counts_ratio"] is None else f"{r['counts_ratio']:.2f}+-{r['counts_ratio_err'] or 0:.2f}"
        lc = (r["light_curve"] or {}).get("chi2_red")
        out.append(
            f"  {str(r['name'])[:21]:<22}{'y' if r['in_fov'] else 'n':>4}{'y' if r['found'] else 'n':>6}"
            f"{r['src_id'] if r['src_id'] is not None else '-':>4}{_fmt(r['offset_arcsec']):>9}"
            f"{_fmt(r['err_r90_arcsec']):>7}{_fmt(r['offset_r90'], '.2f'):>8}{r['true_counts']:>10.0f}"
            f"{ratio:>12}{_fmt(r['det_ml']):>8}{_fmt(lc, '.2f'):>9}"
        )
    false = [d for d in result["detections"] if d["matched"] < 0]
    out.append(f"Detections: {len(result['detections'])}, matched {result['n_found']}, false {result['n_false']}")
    for d in false:
        out.append(f"  false: SRC_ID {d['src_id']} RA {d['ra']:.5f} Dec {d['dec']:.5f} DET_ML {d['det_ml']:.1f}")
    if result["lines"]:
        out.append("Calibration lines")
        for ln in result["lines"]:
            out.append(f"  {ln['energy_kev']:.3f} keV: measured {_fmt(ln['measured_kev'], '.4f')} keV, residual "
                       f"{_fmt(ln['residual_ev'], '+.1f')} +- {_fmt(ln['error_ev'])} eV ({ln['n_events']} events)")  # fmt: skip
    out.append("Verdicts")
    for k, v in result["verdicts"].items():
        out.append(f"  {k:<18} {v}")
    return "\n".join(out)


@click.command("compare")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--truth", "truth_path", type=click.Path(exists=True, dir_okay=False), help="truth.json of the simulation.")
@click.option("--srclist", type=click.Path(exists=True, dir_okay=False), help="MXT-SOP-SKY source list.")
@click.option("--lc", "lc_paths", multiple=True, type=click.Path(exists=True, dir_okay=False), help="MXT_LC light curve (repeatable).")
@click.option("--events", type=click.Path(exists=True, dir_okay=False), help="L2 event list (calibration lines).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output folder (default: beside the collection, compare_<collection>/; else RUN_DIR/compare).")
@click.option("--match-radius", type=float, default=120.0, show_default=True, help="Matching radius (arcsec).")
@click.option("--no-plots", is_flag=True, help="Do not draw the plots.")
@click.option("--strict", is_flag=True, help="Exit with status 1 when a verdict is FAIL.")
def command(run_dir, truth_path, srclist, lc_paths, events, out_dir, match_radius, no_plots, strict) -> None:
    """Compare the pipeline products of a run with its simulated truth."""
    from mxt_pipeline.campaign.truth_match import FAIL, Tolerances, compare_run
    from mxt_pipeline.io import atomic_write_bytes, read_product
    from mxt_pipeline.io.lightcurve_product import read_light_curve
    from mxt_pipeline.io.truth import read_truth
    from mxt_pipeline.pipelines.ports import write_json

    root = Path(run_dir)
    found = {"truth": truth_path, "srclist": srclist, "events": events, "lcs": list(lc_paths)}
    if not (truth_path and srclist):
        found = find_products(root, found)
    truth = read_truth(found["truth"])
    table = read_product(found["srclist"], "MXT_SOP_SKY").table("SRCLIST")
    lcs = {}
    for p in found["lcs"]:
        lc = read_light_curve(p)
        lcs[int(lc.meta["SRC_ID"])] = lc
    energies = gti = None
    if found["events"]:
        from mxt_pipeline.campaign.execute import line_event_energies
        from mxt_pipeline.io.products import read_events

        ev = read_events(found["events"])
        energies, gti = line_event_energies(ev), ev.gti
    tol = Tolerances(match_radius_arcsec=match_radius)
    result = compare_run(truth, table, light_curves=lcs, events_energy_kev=energies, gti=gti, tol=tol)
    out = output_folder(root, found["srclist"], out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "compare.json", result)
    buf = io.StringIO()
    _source_table(result).write(buf, format="ascii.ecsv")
    atomic_write_bytes(out / "compare_sources.ecsv", buf.getvalue().encode())
    click.echo(render_text(result))
    if not no_plots:
        from mxt_pipeline.campaign.plots import comparison_plots

        paths = comparison_plots(result, truth, out, light_curves=lcs, energies_kev=energies, gti=gti)
        click.echo("plots: " + ", ".join(p.name for p in paths))
    click.echo(f"written: {out / 'compare.json'}, {out / 'compare_sources.ecsv'}")
    if strict and FAIL in result["verdicts"].values():
        raise SystemExit(1)
