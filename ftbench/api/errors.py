"""Exceptions that the CLI turns into one clear line and an exit code (never a traceback unless --debug)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INPUT_ERRORS = 1  # the input has errors (bad data, bad config values)
EXIT_USAGE = 2  # usage or I/O problem (missing file, bad option)
# interrupted (Ctrl-C, SIGTERM, SIGHUP): the work is incomplete, as pip says with 1 on Ctrl-C; what was done is
# kept and the same command resumes (the shell's 128+N would be a fourth meaning for a caller to know)
EXIT_INTERRUPTED = 1
EXIT_INTERNAL = 3  # a bug in ftbench: rerun with --debug and report the traceback


class FtbenchError(Exception):
    """An error the user can fix; ``str(err)`` is the whole message, ``exit_code`` what the CLI exits with."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(FtbenchError):
    """Bad options, or a file that cannot be read: exit code 2."""


class InputError(FtbenchError):
    """The user's data or config is wrong: exit code 1."""

    exit_code = EXIT_INPUT_ERRORS
