"""What the commands that serve a page on 127.0.0.1 share: the check of the port they are given."""

from __future__ import annotations

import socket

from vaetune.errors import UserError


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
