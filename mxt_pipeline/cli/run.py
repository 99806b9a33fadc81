"""``mxt run``: run the XBAND-GP or XBAND-CP pipeline on a dataset or for the scheduler.

Two ways to launch a run, one code path (:func:`mxt_pipeline.pipelines.execute.execute`):

* ``mxt run DATASET --pipeline xband-gp --out DIR`` (people): the target comes from
  the dataset's ``dataset.json``; the token, when a service needs one, from
  ``$MXT_TOKEN`` (never from an option: command lines are visible to every user);
* ``mxt run --runtime-data runtime_data.json`` (the scheduler): everything, token
  included, from the file (schema in docs/pipelines.md).

A *telemetry dataset* (``dataset.json`` listing pass folders in ``files.telemetry`` and no
L1 file) runs as preprocess -> XBAND-GP/CP: the ``preprocess`` brick is the pipeline's
first brick and its L1 passes and attitude feed ``calibrate``.  ``--from-telemetry``
asks for the same on a dataset holding both L1 files and telemetry (``mxt simulate
--telemetry`` writes both; the pass folders are those of ``telemetry/telemetry.json``).

``mxt run --reprocess OUT/<collection>`` reruns a published collection's inputs with
the current pipeline and CALDB into a new collection beside it.

The exit code is the processing status's (0 SUCCESS, 3 PARTIAL, 4 NO_DATA, 10
BAD_INPUT, 11 CALDB_ERROR, 12 CALDB_UNAVAILABLE, 13 SERVICE_UNAVAILABLE, 14
AUTH_FAILED, 70 INTERNAL_ERROR, 75 BUSY, 80 INTERRUPTED), and
``processing_status.json`` in the output folder says the same.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from mxt_pipeline.cli.vocabulary import CALDB_HELP, CALDB_URL_HELP, PROGRESS_HELP
from mxt_pipeline.errors import MXTError

__all__ = ["command"]


def _summary(outcome) -> str:
    st = outcome.status
    where = f" -> {outcome.collection}" if outcome.collection is not None else ""
    head = f"{st.pipeline} {st.obs_id}: {st.status} (exit {st.exit_code}){where}"
    if st.already_done:
        head += "  [already processed with the same inputs and versions]"
    lines = [head]
    if outcome.result is not None:
        for b in outcome.result.bricks:
            flag = " (resumed)" if b.resumed else ""
            lines.append(f"  {b.name:<18} {b.status:<9} {b.elapsed_s:9.3f} s{flag}")
        total = outcome.report["timing"].get("total_s") if outcome.report else outcome.result.elapsed_s
        lines.append(f"  {'total':<18} {'':<9} {total:9.3f} s")
    if st.reason:
        r = st.reason
        loc = " ".join(f"{k}={r[k]}" for k in ("file", "hdu", "column", "keyword") if r.get(k) is not None)
        lines.append(f"  stopped at {st.stopped_at}: {r.get('type')}: {r.get('message')}" + (f" [{loc}]" if loc else ""))
    return "\n".join(lines)


def _early_failure(out_dir: Path | None, pipeline: str, obs_id: str, exc: BaseException, phase: str) -> int:
    """Status for a failure before a run could start (bad runtime data, no dataset)."""
    # lazy: mxt --help imports every command module (cli/main.py); the pipelines load ~1100 modules
    from mxt_pipeline.pipelines.brick import ErrorInfo
    from mxt_pipeline.pipelines.status import StatusRecord, status_for_exception, write_status

    status = status_for_exception(exc, phase)
    record = StatusRecord(status, pipeline=pipeline, obs_id=obs_id, stopped_at={"phase": phase},
                          reason=ErrorInfo.from_exception(exc, phase).to_dict())  # fmt: skip
    if out_dir is not None:
        try:
            write_status(out_dir, record)
        except OSError as err:  # the folder itself is unusable: say so, keep the status code
            click.echo(f"mxt run: cannot write the status in {out_dir}: {err}", err=True)
    click.echo(f"mxt run: {status} (exit {record.exit_code}): {exc}", err=True)
    return record.exit_code


def _output_dir_of(runtime_data: Path) -> Path | None:
    """The output folder named by a runtime data file that failed validation, if readable."""
    try:
        doc = json.loads(runtime_data.read_text(encoding="utf-8"))
        out = doc.get("output_dir") if isinstance(doc, dict) else None
    except (OSError, ValueError):
        return None
    if not isinstance(out, str) or not out:
        return None
    p = Path(out)
    return p if p.is_absolute() else runtime_data.resolve().parent / p


def _telemetry_line(outcome) -> str | None:
    """One line of the ``preprocess`` brick's defect counts, when the run had one."""
    if outcome.result is None:
        return None
    try:
        m = outcome.result.result("preprocess").metrics
    except KeyError:
        return None
    if not m:
        return None
    return (f"  telemetry: {m['packets_read']} packets read, {m['kept']} kept, {m['duplicated']} duplicated, "
            f"{m['corrupted']} corrupted, {m['missing']} missing, {m['reordered']} reordered; "
            f"{m['lost_time_s']:.1f} s lost")  # fmt: skip


@click.command("run")
@click.argument("dataset", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--pipeline", "pipeline_name", type=click.Choice(["xband-gp", "xband-cp"]), help="Pipeline to run on DATASET.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Output folder: collections, processing status.")
@click.option("--runtime-data", type=click.Path(dir_okay=False, path_type=Path), help="runtime_data.json from the scheduler.")
@click.option("--reprocess", "reprocess_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Rerun a published collection into a new one beside it.")
@click.option("--caldb", type=click.Path(file_okay=False, path_type=Path), help=CALDB_HELP)
@click.option("--caldb-url", help=CALDB_URL_HELP)
@click.option("--sdb-url", help="Science database URL for the weekly SAA files (default: the dataset's saa/).")
@click.option("--attitude-url", help="Attitude service URL, asked when DATASET lists no ATT file (default: $MXT_ATTITUDE_URL).")
@click.option("--max-tries", type=click.IntRange(1, 20), default=5, show_default=True, help="Attempts per service request.")
@click.option("--burst-ra", type=click.FloatRange(0, 360, max_open=True), help="xband-cp: trigger RA (deg).")
@click.option("--burst-dec", type=click.FloatRange(-90, 90), help="xband-cp: trigger Dec (deg).")
@click.option("--burst-error", type=click.FloatRange(0, 600, min_open=True), help="xband-cp: trigger 90% radius (arcmin).")
@click.option("--burst-id", help="xband-cp: burst identifier.")
@click.option("-p", "--param", "params", multiple=True, metavar="BRICK.NAME=VALUE", help="Parameter override (repeatable).")
@click.option("--force", is_flag=True, help="Process even if already done with the same inputs and versions.")
@click.option("--progress/--no-progress", default=None, help=PROGRESS_HELP)
@click.option("--describe", is_flag=True, help="Print the pipeline's bricks (JSON) and exit.")
@click.option("--from-telemetry", is_flag=True,
              help="Run on DATASET's telemetry (CCSDS packets): the preprocess brick first, then the pipeline "
                   "(automatic for a dataset with telemetry and no L1 file).")
@click.pass_context
def command(ctx, dataset, pipeline_name, out_dir, runtime_data, reprocess_dir, caldb, caldb_url, sdb_url, attitude_url,
            max_tries,
            burst_ra, burst_dec, burst_error, burst_id, params, force, progress, describe,
            from_telemetry) -> None:  # fmt: skip
    """Run a pipeline on a dataset, for the scheduler, or again on a collection.

    \b
      mxt run DATASET --pipeline xband-gp|xband-cp --out DIR
      mxt run --runtime-data runtime_data.json
      mxt run --reprocess DIR/COLLECTION [--caldb NEW_CALDB]
    """
    # lazy: mxt --help imports every command module (cli/main.py); the pipelines load ~1100 modules
    from mxt_pipeline.pipelines.execute import execute
    from mxt_pipeline.pipelines.parameters import parse_overrides
    from mxt_pipeline.pipelines.runtime import (
        BurstPosition,
        load_runtime_data,
        request_from_dataset,
    )
    from mxt_pipeline.services.tokens import resolve_token

    if progress is None:
        progress = sys.stderr.isatty()
    if describe:
        # lazy: only --describe needs the registry, which imports every brick
        from mxt_pipeline.pipelines.registry import get_pipeline

        if pipeline_name is None:
            raise click.UsageError("--describe needs --pipeline")
        click.echo(json.dumps(get_pipeline(pipeline_name, telemetry=from_telemetry).describe(), indent=2, default=str))
        return
    modes = sum(x is not None for x in (dataset, runtime_data, reprocess_dir))
    if modes != 1:
        raise click.UsageError("give exactly one of DATASET, --runtime-data or --reprocess")
    if from_telemetry and dataset is None:
        raise click.UsageError("--from-telemetry needs DATASET (runtime data and collections say what their inputs are)")
    try:
        overrides = parse_overrides(params)
    except MXTError as exc:
        raise click.UsageError(str(exc)) from None

    if reprocess_dir is not None:
        # lazy: only --reprocess needs the collection reader
        from mxt_pipeline.pipelines.reprocess import reprocess

        try:
            outcome = reprocess(
                reprocess_dir, caldb=caldb, caldb_url=caldb_url, token=resolve_token(), output_dir=out_dir,
                parameters=overrides or None, force=force, progress=progress, handle_signals=True,
            )  # fmt: skip
        except MXTError as exc:
            ctx.exit(_early_failure(out_dir or reprocess_dir.parent, "", "", exc, "runtime"))
        click.echo(_summary(outcome), err=True)
        ctx.exit(outcome.exit_code)

    if runtime_data is not None:
        if pipeline_name or out_dir or caldb or caldb_url or sdb_url or attitude_url:
            raise click.UsageError("--pipeline, --out, --caldb, --caldb-url, --sdb-url and --attitude-url come from the "
                                   "runtime data")
        try:
            request = load_runtime_data(runtime_data)
        except MXTError as exc:
            ctx.exit(_early_failure(_output_dir_of(runtime_data), "", "", exc, "runtime"))
        request.progress = progress or request.progress
        if overrides:
            for brick, values in overrides.items():
                request.parameters.setdefault(brick, {}).update(values)
    else:
        if pipeline_name is None or out_dir is None:
            raise click.UsageError("DATASET needs --pipeline and --out")
        burst = None
        if (burst_ra is None) != (burst_dec is None):
            raise click.UsageError("give both --burst-ra and --burst-dec")
        if burst_ra is not None:
            burst = BurstPosition(burst_ra, burst_dec, burst_error)
        try:
            request = request_from_dataset(
                dataset, pipeline_name, out_dir, burst_position=burst, burst_id=burst_id, token=resolve_token(),
                caldb=caldb, caldb_url=caldb_url, sdb_url=sdb_url, max_tries=max_tries, parameters=overrides,
                attitude_url=attitude_url,
                force=force, progress=progress, telemetry=True if from_telemetry else None,
            )  # fmt: skip
        except MXTError as exc:
            ctx.exit(_early_failure(out_dir, pipeline_name, "", exc, "inputs"))
    outcome = execute(request, handle_signals=True)
    click.echo(_summary(outcome), err=True)
    line = _telemetry_line(outcome)
    if line is not None:
        click.echo(line, err=True)
    ctx.exit(outcome.exit_code)
