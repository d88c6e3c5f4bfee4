"""Checks a process makes before it starts, so a mistake reads as one sentence, not a traceback.

Two users on one host (or a second ``gpuwatch pipeline``) collide on the fixed
default ports; Kafka may not be where the settings say. Each check says what
is wrong and what to do (``gpuwatch up`` picks free ports by itself).
"""

from __future__ import annotations

import errno
import socket


def port_taken(host: str, port: int) -> bool:
    """True when something already listens on ``host:port`` (port 0 is never taken).

    >>> port_taken("127.0.0.1", 0)
    False
    """
    if port == 0:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT socket is not a listener
        try:
            s.bind((host, port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


def port_message(what: str, host: str, port: int, flag: str) -> str:
    return (f"{host}:{port} is already in use, so {what} cannot listen there (another gpuwatch, perhaps "
            f"another user's); pass {flag} with a free port (0 picks one), or run `gpuwatch up`, "
            "which picks free ports")


def kafka_unreachable(bootstrap: str, conf: dict, timeout: float = 10.0) -> str | None:
    """Why Kafka at ``bootstrap`` cannot be reached, or None when it answers."""
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({**conf, "bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=timeout)
    except Exception as e:  # noqa: BLE001 - any client failure is "not reachable", said in one line
        return (f"cannot reach Kafka at {bootstrap} ({getattr(e.args[0], 'str', lambda: e)() if e.args else e}); "
                "start it with `gpuwatch up` (or `gpuwatch kafka start`), or set GPUWATCH_KAFKA_BOOTSTRAP")
    return None
