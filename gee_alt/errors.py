"""The single error type for user errors (bad input, bad config, missing credentials).

The CLI turns a :class:`GeeAltError` into one line on stderr and exit code 2; anything else
is a bug and keeps its traceback.
"""


class GeeAltError(Exception):
    """A problem with the user's input, config, files or credentials (exit code 2).

    The message is one line that names the problem and, where possible, the fix.
    """

    exit_code = 2


class GeeAltWarning(UserWarning):
    """Something the user should know that does not stop the command (printed as one line)."""


class IncompleteRunError(GeeAltError):
    """A run that finished its products without some years (exit code 3).

    The run directory keeps its resume record and has no manifest: rerunning the same command
    retries only the missing years. The message names them and Earth Engine's reasons.
    """

    exit_code = 3
