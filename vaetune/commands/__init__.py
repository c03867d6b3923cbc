"""The `vaetune` commands: one module per command (or small family of commands), each holding
its arguments and its handler together.

A command module has one function, ``register(commands)``, which adds its sub-parser(s) to the
`vaetune` parser's sub-commands and binds each to its handler with ``set_defaults(run=...)``. A
handler turns the parsed arguments into typed values, calls the library (which takes typed
values, returns values and does not print), prints what the user should see, and returns an exit
code. `vaetune.cli` registers every module here (`command_modules`): a new file is a new
command. Modules here import only the standard library at the top, so `vaetune --help` answers
at once; the library is imported inside the handlers. Errors meet the user in one place,
`vaetune.cli.main`.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

# `vaetune --help` lists the commands of these modules first, in this order (a workflow's: make a
# space, search, train, look at the results); any other module follows them, by name.
ORDER = ("init", "spaces", "search", "sweep", "train", "data", "fid", "export", "ui", "dashboard", "gallery",
         "report", "pictures", "cluster")


def command_modules() -> list[ModuleType]:
    """Every command module of this package (each whose name does not start with `_`), in
    `vaetune --help`'s order."""
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    names.sort(key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]
