"""Errors that describe a user's mistake: the CLI prints them in one line, without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (a file, a key, a value); the message says what would be accepted."""
