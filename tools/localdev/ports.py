"""Port checks before anything starts: every busy port is reported with who wanted it."""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping

from .config import LOOPBACK, PORTS


class PortBusy(RuntimeError):
    """One or more ports of the local platform are taken; the message has one line per port.

    Attributes:
        busy: ``{var: port}`` of the ports that could not be bound.
    """

    def __init__(self, message: str, busy: dict[str, int]) -> None:
        super().__init__(message)
        self.busy = busy


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True when a listening socket could bind ``host:port`` now.

    Binds with ``SO_REUSEADDR`` like the servers themselves do, so a port in
    ``TIME_WAIT`` from a previous run counts as free. Any other bind error
    (``EADDRINUSE``, ``EACCES``) counts as busy.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                return False
            raise
    return True


def check_ports_free(ports: Mapping[str, int], host: str = LOOPBACK) -> None:
    """Raise ``PortBusy`` naming every port of ``ports`` (``{var: port}``) that is taken.

    The message says, per port: the number, the variable that sets it, what
    wanted it, and how to pick another, e.g.::

        port 8080 (FILES_API_PORT) is already in use on 127.0.0.1; files-api (gunicorn) wanted it.
          Stop what holds it (ss -ltnp 'sport = :8080') or choose another: make dev FILES_API_PORT=18080
    """
    owners = {spec.var: spec.owner for spec in PORTS}
    busy = {var: port for var, port in ports.items() if not port_is_free(port, host)}
    if not busy:
        return
    lines = []
    for var, port in busy.items():
        lines.append(
            f"port {port} ({var}) is already in use on {host}; {owners.get(var, var)} wanted it.\n"
            f"  Stop what holds it (ss -ltnp 'sport = :{port}') or choose another: make dev {var}={_suggest(port)}"
        )
    raise PortBusy("\n".join(lines), busy)


def _suggest(port: int) -> int:
    candidate = port + 10000 if port < 55535 else port - 10000
    return candidate
