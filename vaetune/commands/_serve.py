"""What the commands that serve a page on 127.0.0.1 share: the check of the port they are given,
and the server run in the foreground until Ctrl-C."""

from __future__ import annotations

import socket
import subprocess

from vaetune.errors import Failure, UserError


def check_port(port: int, flag: str = "--port") -> None:
    """Raise a UserError naming the port unless a server can listen on 127.0.0.1:`port`.

    Args:
        port: the port asked for.
        flag: the argument that gave it, for the message.
    """
    if not 1 <= port <= 65535:
        raise UserError(f"{flag}: got {port}; give a port number from 1 to 65535")
    with socket.socket() as sock:
        # as the servers do: a port whose last connection is closing (TIME_WAIT) is free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            other = port + 1 if port < 65535 else 8080
            raise UserError(f"{flag}: got {port}; 127.0.0.1:{port} cannot be used "
                            f"({exc.strerror}); pass a free port, e.g. {flag} {other}") from None


def serve(cmd: list[str], env: dict[str, str], what: str) -> int:
    """Run a server command in the foreground until it ends; Ctrl-C ends it (exit code 0), any
    other end is a Failure naming `what` (the server printed its reason above).

    Args:
        cmd: the server's command line.
        env: its environment.
        what: the server, for the message ("the MLflow UI").
    """
    try:
        code = subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0
    if code not in (0, -2, 130):  # not a Ctrl-C
        raise Failure(f"{what} exited with code {code}")
    return 0
