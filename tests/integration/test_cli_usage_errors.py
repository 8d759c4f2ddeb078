"""Command-line usage errors on the installed CLI: exit 2, the usage line and ONE error line on
stderr, no traceback, nothing written (issue 18: typer >= 0.26 vendors its own click, whose
exceptions ``click.ClickException`` does not catch).

Each case runs the ``gee-alt`` entry point in a subprocess (the console script next to the
interpreter when it is installed, else ``python -m gee_alt``) in an empty working directory,
with the typer that is installed.

=====  ====================================  ============================================
id     kind                                  command
=====  ====================================  ============================================
U01    unknown option (issue)                demo --bogus
U02    missing argument (issue)              calibrate
U03    unknown command (issue)               nosuchcmd
U04    unknown option, with --out given      demo --out RUN --bogus
U05    unknown command of a sub-group        insitu nosuch
U06    missing argument, with options        calibrate --insitu sites.csv
U07    missing required option               demo
U08    bad value for an int option           demo --out RUN --seed abc
U09    bad value for a float option          calibrate RUN --insitu sites.csv --dem-std-max x
U10    option without its value              demo --out  (click gives no usage line here)
U11    unexpected extra argument             info extra
U12    bad choice (--engine)                 run --engine bogus --out RUN
=====  ====================================  ============================================
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer

from helpers.robust import subprocess_env


def gee_alt_command() -> list[str]:
    """The installed console script (``[project.scripts]``), else the package's ``__main__``."""
    script = Path(sys.executable).with_name("gee-alt")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gee_alt"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*gee_alt_command(), *args], cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=120
    )


def assert_usage_error(res: subprocess.CompletedProcess, cwd: Path, usage: str | None, error: str) -> None:
    """Exit 2; stderr is exactly typer's usage line, its ``--help`` hint and one ``Error:`` line
    (only the error line when click raises it before a command context exists: ``usage`` None)."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    assert res.stdout == ""
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    if usage is not None:
        command = usage.split(" [")[0].removeprefix("Usage: ")
        assert lines[:2] == [usage, f"Try '{command} --help' for help."], res.stderr
    assert len(lines) == (1 if usage is None else 3), res.stderr
    assert lines[-1] == error or (error.endswith("...") and lines[-1].startswith(error[:-3])), (lines[-1], error)
    assert list(cwd.iterdir()) == [], "a usage error wrote something"


# (id, argv, usage line, error line; a trailing "..." matches the start of the line only)
CASES = [
    ("U01", ["demo", "--bogus"], "Usage: gee-alt demo [OPTIONS]", "Error: No such option: --bogus..."),
    ("U02", ["calibrate"], "Usage: gee-alt calibrate [OPTIONS] {run_dir}", "Error: Missing argument 'run_dir'."),
    ("U03", ["nosuchcmd"], "Usage: gee-alt [OPTIONS] COMMAND [ARGS]...", "Error: No such command 'nosuchcmd'."),
    ("U04", ["demo", "--out", "RUN", "--bogus"], "Usage: gee-alt demo [OPTIONS]", "Error: No such option: --bogus..."),
    (
        "U05",
        ["insitu", "nosuch"],
        "Usage: gee-alt insitu [OPTIONS] COMMAND [ARGS]...",
        "Error: No such command 'nosuch'.",
    ),
    (
        "U06",
        ["calibrate", "--insitu", "sites.csv"],
        "Usage: gee-alt calibrate [OPTIONS] {run_dir}",
        "Error: Missing argument 'run_dir'.",
    ),
    ("U07", ["demo"], "Usage: gee-alt demo [OPTIONS]", "Error: Missing option '--out' / '-o'."),
    (
        "U08",
        ["demo", "--out", "RUN", "--seed", "abc"],
        "Usage: gee-alt demo [OPTIONS]",
        "Error: Invalid value for '--seed': ...",
    ),
    (
        "U09",
        ["calibrate", "RUN", "--insitu", "sites.csv", "--dem-std-max", "x"],
        "Usage: gee-alt calibrate [OPTIONS] {run_dir}",
        "Error: Invalid value for '--dem-std-max': ...",
    ),
    ("U10", ["demo", "--out"], None, "Error: Option '--out' requires an argument."),
    ("U11", ["info", "extra"], "Usage: gee-alt info [OPTIONS]", "Error: Got unexpected extra argument(s) (extra)"),
]


@pytest.mark.parametrize("cid, argv, usage, error", CASES, ids=[c[0] for c in CASES])
def test_usage_error(cid, argv, usage, error, tmp_path):
    assert_usage_error(run_cli(*argv, cwd=tmp_path), tmp_path, usage, error)


def test_bad_value_names_the_value(tmp_path):
    """The bad-value line says what was wrong with it, whichever typer converts it."""
    res = run_cli("demo", "--out", "RUN", "--seed", "abc", cwd=tmp_path)
    line = res.stderr.splitlines()[-1]
    assert "'abc' is not a valid int" in line or "valid integer" in line, line


def test_bad_choice_is_one_gee_alt_error_line(tmp_path):
    """U12: ``--engine`` is checked by gee-alt (a GeeAltError), before the run directory exists."""
    res = run_cli("run", "--engine", "bogus", "--out", "RUN", cwd=tmp_path)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stdout == ""
    assert res.stderr.splitlines() == ["error: --engine must be 'local' or 'ee', got 'bogus'"]
    assert list(tmp_path.iterdir()) == []


def test_help_and_no_arguments(tmp_path):
    """``--help`` still exits 0 with the help on stdout; no arguments shows the help and exits 2
    (click's rule for ``no_args_is_help``); neither prints a traceback."""
    helped = run_cli("calibrate", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "Usage: gee-alt calibrate [OPTIONS]" in helped.stdout
    assert "--insitu" in helped.stdout
    bare = run_cli(cwd=tmp_path)
    assert bare.returncode == 2, bare.stderr
    assert "Usage: gee-alt [OPTIONS] COMMAND [ARGS]..." in bare.stdout + bare.stderr
    assert "calibrate" in bare.stdout + bare.stderr
    assert "Traceback" not in bare.stderr + helped.stderr
    assert list(tmp_path.iterdir()) == []


def test_typer_usage_errors_derive_from_its_public_exception():
    """cli.main catches usage errors as ``typer.TyperException`` (public since typer 0.27.2): a
    typer outside the pinned range that drops this breaks here, not in front of a user."""
    assert issubclass(typer.BadParameter, typer.TyperException)
    exc = typer.BadParameter("x")
    assert exc.exit_code == 2
    assert callable(exc.show)
