"""The `vaetune` commands, one module each: its name, its one-line help, its arguments and its
handler together (`NAME`, `HELP`, `add_arguments(parser)`, `run(args) -> exit code`).

A command module imports only argparse/pathlib-level modules at its top (the parser imports
every one of them); `run` turns the arguments into typed values, calls the library, prints and
returns the exit code.
"""
