"""The `vaetune` subcommands, one module each.

A command module holds its arguments and its handler together: `NAME` (the subcommand),
`HELP` (one line for --help), `add_arguments(parser)` and `run(args) -> int`, which turns the
parsed arguments into typed values, calls the library, prints and returns an exit code. Only
argparse/pathlib-level imports at a module's top: the parser imports every command module, and
`vaetune --help` must answer without importing torch, Ray or MLflow.
"""
