"""What the commands that serve a page on 127.0.0.1 share: the check of the port they are given,
and the server run in the foreground until Ctrl-C.

The server (Streamlit, MLflow's) ends with the command however the command is stopped: Ctrl-C,
SIGTERM (kill, a job scheduler, a service manager) and SIGHUP (a closed terminal or SSH session)
are passed to the server's whole process group (its own workers too), and, on Linux, the kernel
sends it SIGTERM if the command dies without a word (SIGKILL). Nothing is left holding the port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys

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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # each stops the server, then the command
STOP_WAIT_S = 10.0  # how long a stopped server may take to close before it is killed
_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def serve(cmd: list[str], env: dict[str, str], what: str) -> int:
    """Run a server command in the foreground until it ends. Ctrl-C ends it (exit code 0); SIGTERM
    and SIGHUP end it too (exit code 128 + the signal); any other end is a Failure naming `what`
    (the server printed its reason above).

    Args:
        cmd: the server's command line.
        env: its environment.
        what: the server, for the message ("the MLflow UI").
    """
    received: list[int] = []

    def forward(signum, frame) -> None:  # to the server's group; a second signal kills it
        _signal_group(server, signal.SIGKILL if received else signum)
        received.append(signum)

    server = subprocess.Popen(cmd, env=env, process_group=0, preexec_fn=_die_with_parent())
    before = {sig: signal.signal(sig, forward) for sig in STOP_SIGNALS}
    try:
        code = server.wait()  # the signals' handler runs meanwhile; the server's end ends the wait
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        _stop(server)
    if received:
        return 0 if received[0] == signal.SIGINT else 128 + received[0]
    if code not in (0, -2, 130):  # not a Ctrl-C
        raise Failure(f"{what} exited with code {code}")
    return 0


def _signal_group(server: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signum)


def _stop(server: subprocess.Popen) -> None:
    """End what is left of the server's process group: SIGTERM, then SIGKILL after STOP_WAIT_S
    (its workers may outlive their leader)."""
    if server.poll() is None:
        _signal_group(server, signal.SIGTERM)
        try:
            server.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(server, signal.SIGKILL)
    server.wait()


def _die_with_parent():
    """What the server's process runs before the server: on Linux, ask for SIGTERM when vaetune
    dies (prctl), looked up here, before the fork, so the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
