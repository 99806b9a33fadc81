"""``mxt campaign run|report``: Monte-Carlo campaigns on dask.distributed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mxt_pipeline.campaign.runner import CampaignSpec, load_results, run_campaign
from mxt_pipeline.campaign.tables import read_results, write_results
from mxt_pipeline.cli.vocabulary import CALDB_HELP
from mxt_pipeline.errors import MXTError, MXTInputError
from mxt_pipeline.io.fits import atomic_write_bytes

RESULTS_FILE = "campaign_results.fits"
REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"


@click.group("campaign")
def command() -> None:
    """Monte-Carlo campaigns: simulate, run the pipeline and compare, many times."""


@command.command("run")
@click.option("--case", type=click.Choice(["montecarlo", "grb", "gp"]), default=None,
              help="Simulated preset case (or --scenario).")
@click.option("--scenario", "scenario_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A scenario file (YAML, docs/simulation.md) run N times with per-run seeds (or --case).")
@click.option("--n", "n_runs", type=click.IntRange(min=1), required=True, help="Number of runs.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Campaign folder (created; run again to resume).")
@click.option("--seed", type=int, default=0, show_default=True, help="Campaign seed.")
@click.option("--scheduler", default=None, help="Existing dask scheduler, tcp://HOST:PORT (default: a local cluster).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Workers of the local cluster.")
@click.option("--caldb", type=click.Path(file_okay=False), default=None, help=CALDB_HELP)
@click.option("--option", "options", multiple=True, help="Case option KEY=VALUE (JSON value), repeatable.")
@click.option("--runner", default=CampaignSpec.runner, show_default=True, help="Run function module:function.")
def run_cmd(case, scenario_file, n_runs, out_dir, seed, scheduler, workers, caldb, options, runner) -> None:
    """Run (or resume) a campaign; only runs without a result are executed.

    A campaign runs a preset case (--case) or the user's scenario file (--scenario):
    the same observation N times, each run with its own seed.
    """
    if (case is None) == (scenario_file is None):
        raise click.UsageError("give either --case or --scenario")
    opts = {}
    for item in options:
        key, _, value = item.partition("=")
        try:
            opts[key] = json.loads(value)
        except json.JSONDecodeError:
            opts[key] = value
    if caldb:
        opts["caldb"] = str(Path(caldb).resolve())
    if scenario_file is not None:
        case = "scenario"
        opts.update(read_scenario_option(Path(scenario_file)))
    spec = CampaignSpec(case=case, n=n_runs, seed=seed, runner=runner, options=opts)
    records = run_campaign(out_dir, spec, scheduler=scheduler, n_workers=workers)
    write_results(Path(out_dir) / RESULTS_FILE, records, case, seed)
    n_ok = sum(r["status"] == "OK" for r in records)
    click.echo(f"{n_ok} of {len(records)} runs OK; results in {Path(out_dir) / RESULTS_FILE}")


def read_scenario_option(path: Path) -> dict:
    """The campaign options of a scenario file: its parsed content, name and digest.

    The scenario is checked here, before any worker starts, and kept whole in
    ``campaign.json``: a campaign resumed after the file changed is refused as another
    campaign instead of mixing two scenarios.

    Raises
    ------
    MXTFormatError, MXTInputError
        The file is not YAML or not a valid scenario (the message names the file and key).
    """
    # lazy: io.simulated_dataset loads the bench (numba kernels); mxt --help imports every command module
    from mxt_pipeline.io.simulated_dataset import scenario_document

    data, digest = scenario_document(path)
    return {"scenario": data, "scenario_file": path.name, "scenario_sha256": digest}


@command.command("report")
@click.argument("campaign_dir", type=click.Path(exists=True, file_okay=False))
def report_cmd(campaign_dir: str) -> None:
    """Write the ensemble report (HTML with plots, summary JSON) of a campaign."""
    # lazy: mxt --help imports every command module (cli/main.py); the report loads matplotlib and scipy
    from mxt_pipeline.campaign.ensemble_report import ensemble_summary, write_html_report

    folder = Path(campaign_dir)
    spec_path = folder / "campaign.json"
    if not spec_path.is_file():
        raise MXTInputError("not a campaign folder: no campaign.json (give the --out folder of "
                            "'mxt campaign run')", file=spec_path)  # fmt: skip
    try:
        spec = CampaignSpec.from_json(spec_path.read_text())
    except (ValueError, TypeError, KeyError) as exc:
        raise MXTInputError(f"unreadable campaign description ({exc}); re-run 'mxt campaign run' into a new "
                            "folder", file=spec_path) from None  # fmt: skip
    records = load_results(folder)
    results = folder / RESULTS_FILE
    write_results(results, records, spec.case, spec.seed)
    sources, runs, meta = read_results(results)
    elapsed = [r["elapsed_s"] for r in records]
    crlb = _crlb_function(spec, records)
    html_path = write_html_report(folder / REPORT_FILE, sources, runs, meta, elapsed, crlb)
    summary = ensemble_summary(sources, runs, elapsed)
    atomic_write_bytes(folder / SUMMARY_FILE, json.dumps(summary, indent=2).encode())
    click.echo(f"report: {html_path}")
    for line in summary_lines(summary):
        click.echo("  " + line)


def summary_lines(summary: dict) -> list[str]:
    """The summary as people read it: 3-4 significant digits, units, the interval's level."""
    level = summary.get("r90_coverage_interval_level")
    out = []
    for key, value in summary.items():
        if key == "r90_coverage_interval_level":
            continue
        if key == "r90_coverage_interval" and value is not None:
            text = f"{value[0]:.3f} - {value[1]:.3f}" + (f" ({100 * level:.1f}% Clopper-Pearson)" if level else "")
        elif isinstance(value, float):
            text = f"{value:.1f}" if key.endswith(("_arcsec", "_s")) else f"{value:.3g}"
        else:
            text = "n/a" if value is None else str(value)
        out.append(f"{key}: {text}")
    return out


def _crlb_function(spec: CampaignSpec, records):
    """The Cramer-Rao bound versus counts from the CALDB PSF, at the campaign's background.

    The background per pixel and band is the median over the runs that recorded it
    (``bkg_per_pixel``); None when the CALDB models are not available.
    """
    import logging

    import numpy as np

    # lazy: mxt --help imports every command module (cli/main.py); campaign.execute loads numba and httpx
    from mxt_pipeline.campaign.execute import crlb_versus_counts

    bkg = [r["result"]["bkg_per_pixel"] for r in records if (r.get("result") or {}).get("bkg_per_pixel")]
    background = np.median(np.asarray(bkg, float), axis=0) if bkg else None
    try:
        return crlb_versus_counts(spec.options, background_per_pixel=background)
    except (MXTError, ImportError) as exc:
        logging.getLogger(__name__).warning("no Cramer-Rao curve in the report: %s", exc)
        return None
