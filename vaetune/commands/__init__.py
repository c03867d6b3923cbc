"""One module per `vaetune` subcommand: its arguments (``add_arguments``) beside its handler.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int`` and
imports only argparse/pathlib-level modules at the top, so building the parser stays cheap; the
handler turns the arguments into typed values, calls the library, prints, and returns an exit code.
"""
