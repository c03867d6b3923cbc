"""The `vaetune` commands: one module per command (or small family of commands), each holding
its arguments and its handler together.

A command module has one function, ``register(commands)``, which adds its sub-parser(s) to the
`vaetune` parser's sub-commands and binds each to its handler with ``set_defaults(run=...)``. A
handler turns the parsed arguments into typed values, calls the library (which takes typed
values, returns values and does not print), prints what the user should see, and returns an exit
code. Modules here import only the standard library at the top, so `vaetune --help` answers at
once; the library is imported inside the handlers. Errors meet the user in one place,
`vaetune.cli.main`.
"""
