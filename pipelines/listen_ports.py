"""Ports a gpuwatch process listens on: out of range or taken is one line naming the setting to change.

Checked before anything starts, so the operator reads which setting to change
instead of a traceback from deep inside a web framework or the JVM.
"""

from __future__ import annotations

import socket


class PortError(ValueError):
    """A port that cannot be used; the text names the setting to change."""


def check_port_range(port: int, setting: str, allow_zero: bool = False) -> int:
    """
    >>> check_port_range(9092, "--port")
    9092
    >>> check_port_range(70000, "--port")
    Traceback (most recent call last):
    ...
    pipelines.listen_ports.PortError: --port 70000 is out of range: use a port from 1 to 65535
    """
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        raise PortError(f"{setting} {port} is out of range: use a port from {low} to 65535")
    return port


def check_port_free(host: str, port: int, setting: str) -> None:
    """Refuse a port another process already listens on (port 0 means any free one, always fine)."""
    check_port_range(port, setting, allow_zero=True)
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers themselves bind
        try:
            s.bind((host or "0.0.0.0", port))
        except OSError as e:
            raise PortError(f"{host}:{port} is already taken ({e.strerror}): stop what holds it "
                            f"or change {setting}") from None


def any_free_port(host: str) -> int:
    """A port free on ``host`` now, for a server that cannot take 0 itself (Faust's web server refuses it).

    >>> 0 < any_free_port("127.0.0.1") <= 65535
    True
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host or "0.0.0.0", 0))
        return s.getsockname()[1]
