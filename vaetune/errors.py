"""Errors meant for a person, not a traceback: the CLI prints each in one line.

- `UserError`: a mistake in a file or an argument; the message names the file or argument, the
  key, the bad value and what is accepted. Exit code 2.
- `Failure`: the work itself failed for a reason the message explains and the user can act on
  (training diverged); neither a mistake in the arguments nor a bug. Exit code 1.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (a file, a key, a value); the message says what would be accepted."""


class Failure(Exception):
    """Work that failed for a reason its message explains (not a bug): one line, exit code 1."""
