"""The `vaetune` command line: the parser of every command and the one place errors meet the user.

Each command lives in its own module under vaetune/commands/ (its arguments and its handler
together), found there and registered here (`vaetune.commands.command_modules`). The library is imported only when a command runs,
so `vaetune --help` answers without importing torch, Ray or MLflow.

Errors: a user mistake (`UserError`, or a bad argument) is printed in one line naming what is
wrong and what is accepted, exit code 2; so is a file the operating system refuses (a folder
where a file was expected, no permission, a full disk), naming the file; work that failed for a
reason it explains (`Failure`: training diverged) is one line, exit code 1; Ctrl-C exits 130; a
full disk is one line naming the file and what to do, exit code 2; a reader that went away
(`| head`) ends the command quietly, exit code 141, and a console that is not UTF-8 gets what it
can hold (vaetune.streams); anything else is a bug: one line says so and names a log file
holding the full traceback, exit code 1. No traceback reaches the terminal.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from vaetune.commands import command_modules
from vaetune.errors import Failure, UserError, crash_log, disk_full, one_line
from vaetune.streams import BROKEN_PIPE, close_broken_pipe, fit_encoding

log = logging.getLogger("vaetune")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `vaetune search: error: ... (see vaetune search --help)`; a
    file name starting with '-' (read as an option) is named there, with how to give it."""

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)  # what error() explains
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        hint = _dash_hint(getattr(self, "_given", []), message)
        self.exit(2, f"{self.prog}: error: {message}{hint} (see {self.prog} --help)\n")


def _dash_hint(given: list[str], message: str) -> str:
    """Why argparse missed a file: its name starts with '-' (an option to argparse), or it came
    after `--` with options behind it."""
    if "--" in given and message.startswith("unrecognized arguments"):
        after = given[given.index("--") + 1:]
        name = f"./{after[0]}" if after and after[0].startswith("-") else "./-NAME"
        return (f"; every word after -- is read as a file name, not an option: put the options before --, "
                f"or drop -- and name the file {name}")
    for word in given:
        if word == "--":
            break
        if (word.startswith("-") and len(word) > 1 and not word.startswith("--")
                and (os.path.lexists(word) or "." in word[2:])):
            return (f"; {word} starts with '-', so it was read as an option: to name the file, write ./{word} "
                    f"(or put -- before it)")
    return ""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="vaetune", description="Hyperparameter search for image VAEs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in command_modules():  # in the order --help lists them
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    fit_encoding()  # a console that is not UTF-8 gets what it can hold, not UnicodeEncodeError
    try:
        return _main(argv)
    except BrokenPipeError:  # the reader went away (`| head`): end quietly, as a Unix tool does
        return close_broken_pipe()


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.version:
        from vaetune import __version__

        print(__version__)
        return 0
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return 2
    name = " ".join(["vaetune", args.command, *([args.action] if getattr(args, "action", None) else [])])
    try:
        return int(run(args) or 0)
    except UserError as err:
        print(f"{name}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except Failure as err:
        print(f"{name}: failed: {one_line(err)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise
    except OSError as err:
        if disk_full(err):  # the user's to fix, wherever it was writing
            where = f"{err.filename}: " if err.filename else ""
            print(f"{name}: error: {where}{err.strerror or err}; free space there (or write elsewhere), then run "
                  "this again", file=sys.stderr)
            return 2
        if not err.filename:  # not about a file the user named: treat it as a bug below
            return _bug(name, argv)
        print(f"{name}: error: {err.filename}: {err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C; a search's SIGTERM while Ray starts carries 143
        print(f"{name}: interrupted", file=sys.stderr)
        return getattr(exc, "exit_code", 130)
    except Exception:
        return _bug(name, argv)


def _bug(name: str, argv: list[str] | None) -> int:
    """The exception being handled is a bug: one line here, the traceback in a file; exit code 1."""
    exc = sys.exc_info()[1]
    path = crash_log(argv if argv is not None else sys.argv[1:])
    first = one_line(exc)[:300]
    where = f"the full traceback is in {path}" if path is not None else (
        "the traceback could not be written (set VAETUNE_CACHE to a writable folder and run it again)")
    print(f"{name}: internal error (a bug in vaetune): {type(exc).__name__}: {first}; {where}", file=sys.stderr)
    return 1


INTERRUPTED = (129, 130, 143)  # SIGHUP, Ctrl-C (SIGINT) and SIGTERM: 128 + the signal


def entry() -> None:
    """The `vaetune` command: main(), then exit with its code. After an interruption the process
    ends at once: a Ctrl-C that landed while a C extension ran Python code (torch's import does)
    leaves CPython marked as killed by SIGINT whatever caught the KeyboardInterrupt, and its exit
    would then end the process by SIGINT instead of with 130."""
    code = main()
    if code in (*INTERRUPTED, BROKEN_PIPE):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
