"""``mxt simulate``: the simulation bench, one command per case (docs/simulation.md).

::

    mxt simulate grb [--template GRB_061121|random|analytic] [--data-dir DIR] --seed N --out DIR
    mxt simulate gp --sources 1..3 --seed N --out DIR
    mxt simulate montecarlo --n N --seed N --out DIR      (DIR/run_00000, DIR/run_00001, ...)
    mxt simulate scenario FILE.yaml --seed N --out DIR

``grb``, ``gp`` and ``scenario`` take ``--telemetry`` (also write the CCSDS packets of
each pass, with downlink defects ``--tm-loss``, ``--tm-overlap``, ``--tm-reorder``,
``--tm-corrupt``; decode them with ``mxt preprocess``).

Every command takes ``--caldb DIR`` (default: ``$CALDB``, else the bundled CALDB),
``--write-scenario FILE`` (save the scenario it ran as YAML) and shows a progress bar
on a terminal (``--no-progress`` to hide it).  A dataset folder that already holds a
dataset is refused unless ``--overwrite`` is given: the old pass files would otherwise
stay beside the new ones and be read with them.

"""

from __future__ import annotations

import click

from mxt_pipeline.cli.vocabulary import CALDB_HELP, PROGRESS_HELP, SEED_HELP
from mxt_pipeline.datapaths import swift_xrt_dir
from mxt_pipeline.errors import MXTInputError

_SEED = click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help=SEED_HELP)
_OUT = click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Dataset folder to write.")
_CALDB = click.option("--caldb", type=click.Path(exists=True, file_okay=False), default=None,
                      help=CALDB_HELP)  # fmt: skip
_WRITE = click.option("--write-scenario", type=click.Path(dir_okay=False), default=None,
                      help="Also write the scenario as YAML to this file.")  # fmt: skip


def _telemetry_options(f):
    """``--telemetry`` and the downlink defect options (docs/formats.md, "Telemetry packets")."""
    opts = [
        click.option("--telemetry/--no-telemetry", default=False,
                     help="Also write the CCSDS packets of each pass under OUT/telemetry/pass_NN/."),
        click.option("--tm-loss", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                     help="Chance that a packet is lost."),
        click.option("--tm-overlap", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Packets of the previous dump re-sent at the start of each pass (duplicates)."),
        click.option("--tm-reorder", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                     help="Chance that a packet is delivered up to 16 places late."),
        click.option("--tm-corrupt", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                     help="Chance that a delivered byte is corrupted."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _write_telemetry(ds, out: str, seed: int, telemetry: bool, tm_loss: float, tm_overlap: int, tm_reorder: float,
                     tm_corrupt: float) -> None:  # fmt: skip
    if not telemetry:
        if tm_loss or tm_overlap or tm_reorder or tm_corrupt:
            raise click.UsageError("the --tm-* options need --telemetry")
        return
    # lazy: mxt --help imports every command module (cli/main.py); these load numpy, astropy, spacepackets
    from mxt_pipeline.io.telemetry_stream import write_telemetry
    from mxt_pipeline.telemetry.downlink import DownlinkDefects

    defects = DownlinkDefects(loss_rate=tm_loss, overlap_packets=tm_overlap, reorder_rate=tm_reorder,
                              corrupt_rate=tm_corrupt)  # fmt: skip
    doc = write_telemetry(ds.passes, ds.attitude, out, defects=defects, seed=seed)
    inj = doc["injected"]
    click.echo(f"{out}/telemetry: {len(doc['passes'])} pass(es), {doc['packets_generated']} packets; injected "
               f"{inj['lost']} lost, {inj['duplicated']} duplicated, {inj['moved']} moved, "
               f"{inj['corrupted']} corrupted")  # fmt: skip


_OVERWRITE = click.option("--overwrite", is_flag=True,
                          help="Replace the dataset already in --out (default: refuse to mix two datasets).")  # fmt: skip
_PROGRESS = click.option("--progress/--no-progress", default=None,
                         help=PROGRESS_HELP)  # fmt: skip


#: What ``write_dataset`` writes in a dataset folder (files and folders).
_DATASET_ENTRIES = ("l1", "aux", "saa", "truth.json", "dataset.json", "scenario.yaml", "telemetry", "telemetry.json")


def _prepare_out(out: str, overwrite: bool) -> None:
    """Refuse (or, with ``overwrite``, clear) a dataset folder that already holds a dataset.

    Only the entries a dataset consists of are removed; anything else the user keeps
    there (a pipeline output folder, notes) is left alone.
    """
    import shutil
    from pathlib import Path


    root = Path(out)
    present = [name for name in _DATASET_ENTRIES if (root / name).exists()]
    if not present:
        return
    if not overwrite:
        raise MXTInputError(f"--out already holds a dataset ({', '.join(present)}): its pass files would be mixed "
                            "with the new ones; choose another --out or add --overwrite to replace it", file=root)  # fmt: skip
    for name in present:
        path = root / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _run(scenario, seed: int, out: str, caldb: str | None, write_scenario: str | None, progress: bool | None,
         *, bar_position: int = 0, leave: bool = True, overwrite: bool = False):  # fmt: skip
    import sys

    from tqdm import tqdm

    # lazy: mxt --help imports every command module (cli/main.py); the bench loads ~1100 modules
    from mxt_pipeline.io.simulated_dataset import run_scenario
    from mxt_pipeline.io.simulated_dataset import write_scenario as write_scenario_file

    _prepare_out(out, overwrite)
    if write_scenario:
        write_scenario_file(scenario, write_scenario)
    show = sys.stderr.isatty() if progress is None else progress
    # One step per stage of bench.simulate (attitude, orbit, each source, each
    # background, detector, passes) plus the writing.
    stages = 2 + len(scenario.sources) + sum(x is not None for x in (scenario.cxb, scenario.particle,
                                                                       scenario.calibration)) + 3  # fmt: skip
    with tqdm(total=stages, desc=scenario.obs_id, disable=not show, position=bar_position, leave=leave,
              unit="step") as bar:  # fmt: skip
        def step(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)

        ds = run_scenario(scenario, seed, out, caldb=caldb, progress=step)
        bar.update(bar.total - bar.n)
    return ds


def _summary(ds, out: str) -> str:
    t = ds.truth
    srcs = ", ".join(f"{s['name']}: {s['photons_detected']} counts ({'in' if s['in_fov'] else 'out of'} field)"
                     for s in t["sources"])  # fmt: skip
    return (f"{out}: {len(ds.passes)} pass(es), {t['counts']['hits']} hits in {t['counts']['frames']} frames; "
            f"sources: {srcs or 'none'}")  # fmt: skip


@click.group("simulate")
def command() -> None:
    """Simulate MXT observations: L1 raw passes, ATT, ANG, SAA files and truth.json."""


@command.command("grb")
@click.option("--template", default="GRB_061121", show_default=True,
              help="Swift-XRT event name, 'random', or 'analytic' (canonical afterglow, no data needed).")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Swift-XRT light-curve folder (default: $MXT_SWIFT_XRT_DATA, else ../shared/data; without "
                   "them the analytic light curve is used).")
@click.option("--delay", type=float, default=300.0, show_default=True, help="Start of the observation after the trigger (s).")
@click.option("--duration", type=float, default=10000.0, show_default=True, help="Observation length (s).")
@click.option("--counts-to-flux", type=float, default=4.0e-11, show_default=True,
              help="Flux (erg/cm2/s, 0.3-10 keV) of one XRT count/s.")
@_SEED
@_OUT
@_CALDB
@_WRITE
@_OVERWRITE
@_PROGRESS
@_telemetry_options
def grb(template, data_dir, delay, duration, counts_to_flux, seed, out, caldb, write_scenario, overwrite, progress,
        **tm):  # fmt: skip
    """A GRB afterglow from a real Swift-XRT light curve (or the analytic canonical one)."""
    # lazy: mxt --help imports every command module (cli/main.py); the cases load ~970 modules
    from mxt_pipeline.simulate.cases import grb_scenario

    tpl = None if template.lower() == "analytic" else template
    sc = grb_scenario(seed, template=tpl, data_dir=data_dir, delay=delay, duration=duration,
                      counts_to_flux=counts_to_flux)  # fmt: skip
    ds = _run(sc, seed, out, caldb, write_scenario, progress, overwrite=overwrite)
    click.echo(_summary(ds, out))
    _write_telemetry(ds, out, seed, **tm)


@command.command("gp")
@click.option("--sources", "n_sources", type=click.IntRange(1, 3), default=2, show_default=True,
              help="Number of sources (the first in the field, the others in or out of it).")
@click.option("--duration", type=float, default=10000.0, show_default=True, help="Observation length (s).")
@_SEED
@_OUT
@_CALDB
@_WRITE
@_OVERWRITE
@_PROGRESS
@_telemetry_options
def gp(n_sources, duration, seed, out, caldb, write_scenario, overwrite, progress, **tm):
    """1 to 3 sources in or out of the field, with variability and various spectra."""
    # lazy: mxt --help imports every command module (cli/main.py); the cases load ~970 modules
    from mxt_pipeline.simulate.cases import gp_scenario

    sc = gp_scenario(seed, n_sources=n_sources, duration=duration)
    ds = _run(sc, seed, out, caldb, write_scenario, progress, overwrite=overwrite)
    click.echo(_summary(ds, out))
    _write_telemetry(ds, out, seed, **tm)


@command.command("montecarlo")
@click.option("--n", "n_runs", type=click.IntRange(min=1), required=True, help="Number of random observations.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Swift-XRT light-curve folder for the GRB runs.")
@_SEED
@_OUT
@_CALDB
@_OVERWRITE
@_PROGRESS
def montecarlo(n_runs, data_dir, seed, out, caldb, overwrite, progress):
    """N random observations (documented distributions) into OUT/run_NNNNN.

    Run i uses the seed derived from --seed and i exactly as ``mxt campaign`` does.
    """
    import sys
    from pathlib import Path

    from tqdm import tqdm

    # lazy: mxt --help imports every command module (cli/main.py); these load numpy and the bench
    from mxt_pipeline.campaign.seeds import run_seed
    from mxt_pipeline.simulate.cases import montecarlo_scenario

    show = sys.stderr.isatty() if progress is None else progress
    for i in tqdm(range(n_runs), desc="runs", disable=not show, unit="run"):
        s = run_seed(seed, i)
        sc = montecarlo_scenario(s, data_dir=data_dir, obs_id=f"MC{i:06d}")
        run_out = str(Path(out) / f"run_{i:05d}")
        ds = _run(sc, s, run_out, caldb, None, False, overwrite=overwrite)
        click.echo(_summary(ds, run_out))


@command.command("scenario")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Swift-XRT light-curve folder for templates given by name.")
@_SEED
@_OUT
@_CALDB
@_OVERWRITE
@_PROGRESS
@_telemetry_options
def scenario(file, data_dir, seed, out, caldb, overwrite, progress, **tm):
    """Run a scenario file (YAML; format in docs/simulation.md)."""
    # lazy: mxt --help imports every command module (cli/main.py); the bench loads ~1100 modules
    from mxt_pipeline.io.simulated_dataset import load_scenario

    sc = load_scenario(file, data_dir=data_dir)
    ds = _run(sc, seed, out, caldb, None, progress, overwrite=overwrite)
    click.echo(_summary(ds, out))
    _write_telemetry(ds, out, seed, **tm)


@command.command("templates")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Swift-XRT light-curve folder (default: $MXT_SWIFT_XRT_DATA, else ../shared/data).")
def templates(data_dir):
    """List the Swift-XRT light curves usable as --template (none without the data)."""
    # lazy: mxt --help imports every command module (cli/main.py); timeprofiles loads numpy
    from mxt_pipeline.simulate.timeprofiles import list_swift_templates

    if swift_xrt_dir(data_dir) is None:
        raise MXTInputError("the Swift-XRT light curves were not found (--data-dir, $MXT_SWIFT_XRT_DATA, "
                            "../shared/data); 'mxt simulate grb --template analytic' needs no data")  # fmt: skip
    for name in list_swift_templates(data_dir, min_bins=0):
        click.echo(name)
