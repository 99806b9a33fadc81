"""User mistakes end in one clear line (what, where the value came from, what to do),
exit status 2 and no Python traceback."""

from __future__ import annotations

import pytest

from mxt_pipeline.cli.main import main


def _err(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return rc, err


def test_campaign_report_on_a_folder_without_campaign_json(tmp_path, capsys):
    rc, err = _err(capsys, ["campaign", "report", str(tmp_path)])
    assert rc == 2
    assert "campaign.json" in err and "mxt campaign run" in err


def test_campaign_report_on_an_unreadable_campaign_json(tmp_path, capsys):
    (tmp_path / "campaign.json").write_text("{not json")
    rc, err = _err(capsys, ["campaign", "report", str(tmp_path)])
    assert rc == 2 and "campaign.json" in err and "unreadable" in err


@pytest.mark.parametrize("argv", [["simulate", "--help"], ["run", "--help"], ["compare", "--help"],
                                  ["campaign", "run", "--help"], ["caldb", "serve", "--help"],
                                  ["attitude", "serve", "--help"], ["attitude", "fetch", "--help"]])
def test_help_has_no_raw_markup(argv, capsys):
    """``--help`` is read on a terminal: no reST double backticks."""
    with pytest.raises(SystemExit) as exc:
        from mxt_pipeline.cli.main import cli

        cli.main(args=argv, prog_name="mxt")
    assert exc.value.code == 0
    assert "``" not in capsys.readouterr().out


def test_a_wrong_caldb_variable_is_named_as_the_source(tmp_path, monkeypatch):
    from mxt_pipeline.caldb.backends import LocalBackend
    from mxt_pipeline.errors import MXTCaldbError

    monkeypatch.setenv("CALDB", str(tmp_path / "nonexistent"))
    with pytest.raises(MXTCaldbError, match="comes from the CALDB environment variable"):
        LocalBackend().rows("SVOM", "MXT")
    # Given explicitly (an option), the variable is not blamed.
    with pytest.raises(MXTCaldbError) as exc:
        LocalBackend(tmp_path / "other").rows("SVOM", "MXT")
    assert "environment variable" not in str(exc.value)


def test_dask_chatter_is_dropped_during_a_campaign_but_errors_and_ours_pass():
    import logging

    from mxt_pipeline.campaign.runner import _QuietDask

    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append((record.name, record.levelname))

    root = logging.getLogger()
    handler = Keep()
    root.addHandler(handler)
    try:
        quiet = _QuietDask()
        for name, level in [("distributed.scheduler", logging.INFO), ("distributed.nanny", logging.WARNING),
                            ("tornado.application", logging.WARNING), ("distributed.worker", logging.ERROR),
                            ("mxt_pipeline.campaign", logging.WARNING)]:  # fmt: skip
            logging.getLogger(name).log(level, "x")
        quiet.restore()
        logging.getLogger("distributed.nanny").warning("after")
    finally:
        root.removeHandler(handler)
    assert seen == [("distributed.worker", "ERROR"), ("mxt_pipeline.campaign", "WARNING"),
                    ("distributed.nanny", "WARNING")]  # fmt: skip


def test_info_reaches_the_terminal_only_with_v(tmp_path):
    """A run raises the package's loggers to INFO for its run.log; without -v the
    terminal still shows warnings only."""
    import subprocess
    import sys

    code = ("import logging, sys; from mxt_pipeline.cli.main import cli\n"
            "cli.callback(int(sys.argv[1]))  # what 'mxt [-v] SUBCOMMAND' does first\n"
            "logging.getLogger('mxt_pipeline').setLevel(logging.INFO)\n"
            "logging.getLogger('mxt_pipeline.x').info('INFO-LINE')\n"
            "logging.getLogger('mxt_pipeline.x').warning('WARN-LINE')\n")  # fmt: skip
    quiet = subprocess.run([sys.executable, "-c", code, "0"], capture_output=True, text=True, check=True)
    loud = subprocess.run([sys.executable, "-c", code, "1"], capture_output=True, text=True, check=True)
    assert "WARN-LINE" in quiet.stderr and "INFO-LINE" not in quiet.stderr
    assert "INFO-LINE" in loud.stderr


def _all_commands():
    import click

    from mxt_pipeline.cli.main import cli

    ctx = click.Context(cli)
    stack = [("mxt", cli)]
    while stack:
        path, cmd = stack.pop()
        yield path, cmd
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                stack.append((f"{path} {name}", cmd.get_command(ctx, name)))


def test_one_vocabulary_for_the_caldb_option():
    """Every ``--caldb`` says the same thing, with the same default."""
    from mxt_pipeline.cli.vocabulary import CALDB_HELP

    # The step commands are being regenerated from the bricks' declared parameters;
    # they join this check when they take CALDB_HELP.
    # The console's --caldb names a CALDB offered for reprocessing (NAME=PATH): another option.
    steps = {"mxt calibrate", "mxt detect", "mxt lightcurve", "mxt console"}
    helps = {path: opt.help for path, cmd in _all_commands() for opt in cmd.params
             if "--caldb" in opt.opts and path not in steps}  # fmt: skip
    assert len(helps) >= 6, helps
    assert {h for h in helps.values()} == {CALDB_HELP}, helps


def test_campaign_summary_is_rounded_and_states_the_confidence_level():
    from mxt_pipeline.cli.campaign import summary_lines

    lines = summary_lines({"n_runs": 2, "detection_efficiency": 0.6666666666666666,
                           "median_offset_arcsec": 30.581092834472656, "r90_coverage": 1.0,
                           "r90_coverage_interval": (0.39812058474788764, 1.0), "r90_coverage_interval_level": 0.683,
                           "median_time_per_run_s": 4.317546696999983, "false_per_field": None})  # fmt: skip
    assert lines == ["n_runs: 2", "detection_efficiency: 0.667", "median_offset_arcsec: 30.6", "r90_coverage: 1",
                     "r90_coverage_interval: 0.398 - 1.000 (68.3% Clopper-Pearson)", "median_time_per_run_s: 4.3",
                     "false_per_field: n/a"]  # fmt: skip


def test_run_without_token_for_a_caldb_service_speaks_of_the_variable(tmp_path, monkeypatch):
    """``mxt run --caldb-url`` without a token: the status names MXT_TOKEN, not Python arguments."""
    from mxt_pipeline.caldb import CaDBIO
    from mxt_pipeline.errors import MXTAuthError

    monkeypatch.delenv("MXT_TOKEN", raising=False)
    with pytest.raises(MXTAuthError) as exc:
        CaDBIO(url="http://127.0.0.1:9", max_tries=1)
    msg = str(exc.value)
    assert "MXT_TOKEN" in msg and "runtime_data.json" in msg and "http://127.0.0.1:9" in msg
    assert "token=" not in msg and "use_tokens" not in msg
