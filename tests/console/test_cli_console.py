"""``mxt console``: registered, and refuses to start without an operator token."""

from __future__ import annotations

from mxt_pipeline.cli.main import main


def test_console_is_a_subcommand(capsys):
    assert main(["--help"]) == 0
    assert "console" in capsys.readouterr().out
    assert main(["console", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--root" in out and "--token-file" in out and "--scheduler" in out


def test_console_refuses_to_start_without_a_token(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MXT_TOKEN", raising=False)
    assert main(["console", "--root", str(tmp_path)]) == 2
    assert "no operator token configured" in capsys.readouterr().err


def test_console_checks_its_caldb_choices(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MXT_TOKEN", "some-operator-token")
    assert main(["console", "--root", str(tmp_path), "--caldb", "nameonly"]) == 2
    assert "NAME=PATH" in capsys.readouterr().err
    assert main(["console", "--root", str(tmp_path), "--caldb", f"x={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "not a CALDB root" in err and "some-operator-token" not in err


def test_token_file_tokens_are_accepted(tmp_path, monkeypatch):
    from mxt_pipeline.console.auth import operator_tokens

    monkeypatch.delenv("MXT_TOKEN", raising=False)
    f = tmp_path / "tokens"
    f.write_text("# operators\nalpha-token\n\nbeta-token\n")
    f.chmod(0o600)
    toks = operator_tokens(f)
    assert len(toks) == 2 and toks.verify("beta-token") and not toks.verify("gamma") and not toks.verify(None)
    monkeypatch.setenv("MXT_TOKEN", "env-token")
    toks = operator_tokens(f)
    assert len(toks) == 3 and toks.verify("env-token") and toks.verify("alpha-token")
    assert "alpha" not in repr(toks)
