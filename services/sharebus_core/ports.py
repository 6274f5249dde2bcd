"""Free local ports for the processes sharebus starts (broker listeners, services, test children).

A port is chosen now and bound later by another process, so two things could take it in between:
an outgoing connection, whose source port the kernel picks from its ephemeral range, and the next
caller of this function. Ports therefore come from below the ephemeral range (Linux's default is
32768-60999), and one process never hands out the same port twice. A random starting point keeps
two processes that allocate at once (a test session and ``make run``) from walking the same path.
"""

from __future__ import annotations

import secrets
import socket
import threading

from sharebus_core.errors import SharebusError

_PORTS = range(20000, 32768)
_lock = threading.Lock()
_handed_out: set[int] = set()
_cursor = secrets.randbelow(len(_PORTS))


class NoFreePort(SharebusError, RuntimeError):
    """Every port in the range is taken or was already handed out."""


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing is bound to on ``host``, outside the ephemeral range, not handed out before."""
    global _cursor
    with _lock:
        for _ in range(len(_PORTS)):
            port = _PORTS[_cursor]
            _cursor = (_cursor + 1) % len(_PORTS)
            if port not in _handed_out and _bindable(host, port):
                _handed_out.add(port)
                return port
    raise NoFreePort(f"no free port in {_PORTS.start}-{_PORTS.stop - 1} on {host}")
