"""Run the CLI in-process and capture exit code, stdout and stderr."""

from __future__ import annotations

import contextlib
import io

from gee_alt.cli import main


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


def assert_user_error(result, *fragments: str) -> str:
    """Exit 2, exactly one line on stderr naming the problem, no traceback."""
    code, out, err = result
    assert code == 2, (code, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for f in fragments:
        assert f.lower() in lines[0].lower(), (f, lines[0])
    return lines[0]
