"""Every option's help text reaches ``--help`` whole: typer renders help through rich markup, where
an unescaped ``[rf]`` (a config table name) is a markup tag and silently vanishes."""

from __future__ import annotations

import re

import typer

from gee_alt.cli import app


def _commands(group, path: tuple[str, ...] = ()):
    """(command path, command) of every leaf command (typer vendors its own click: duck-typed)."""
    if hasattr(group, "commands"):
        for name, cmd in group.commands.items():
            yield from _commands(cmd, (*path, name))
    else:
        yield path, group


def test_bracketed_config_table_names_survive_in_rendered_help():
    from typer.testing import CliRunner

    root = typer.main.get_command(app)
    runner = CliRunner()
    checked = set()
    for path, cmd in _commands(root):
        raw = [getattr(p, "help", None) or "" for p in cmd.params]
        tokens = {m for h in raw for m in re.findall(r"\[[a-z_]+\]", h.replace("\\[", "["))}
        if not tokens:
            continue
        out = runner.invoke(app, [*path, "--help"], terminal_width=400, env={"COLUMNS": "400"}).output
        flat = " ".join(out.replace("│", " ").split())
        for tok in tokens:
            assert tok in flat, (path, tok)
            checked.add((path, tok))
    assert {(("run",), "[rf]"), (("run",), "[ee_run]")} <= checked
