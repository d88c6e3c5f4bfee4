"""Can this worker reach Kafka at all? /healthz's answer when the broker is gone.

Consumer lag cannot say it: with the broker down nothing new is seen, so the lag
reads 0 and a worker that can neither read nor send looked healthy. What can
say it is the Kafka clients' own connections: a consumer in a group always has
one open (its fetch long-poll and the coordinator's heartbeats), so a worker
with no connected broker for longer than a grace period (a broker restarting,
a leader moving) has lost Kafka.

The clients are aiokafka's, inside Faust's consumer thread and producer; they
are read without their locks (a count of open sockets, for a health check),
and any change in those internals reads as "unknown", never as "unreachable".
"""

from __future__ import annotations

from typing import Any, Iterable


def _clients(app: Any) -> Iterable[Any]:
    consumer = getattr(getattr(getattr(app, "consumer", None), "_thread", None), "_consumer", None)
    producer = getattr(getattr(app, "producer", None), "_producer", None)
    for kafka in (consumer, producer):
        client = getattr(kafka, "_client", None)
        if client is not None:
            yield client


def connected_brokers(app: Any) -> int | None:
    """Open connections of the worker's Kafka clients; None when there is no client to ask (starting)."""
    seen, connected = False, 0
    for client in _clients(app):
        try:
            conns = list(client._conns.values())
        except (AttributeError, RuntimeError):  # another aiokafka, or the dict changed while copied
            continue
        seen = True
        connected += sum(1 for c in conns if _connected(c))
    return connected if seen else None


def _connected(conn: Any) -> bool:
    try:
        return bool(conn.connected())
    except Exception:  # noqa: BLE001 - a connection being torn down counts as closed
        return False


class Reachability:
    """Since when no broker has been connected, from samples taken every few seconds."""

    #: Samples in a row without a client to ask after which :meth:`observe` says the check is blind.
    BLIND_AFTER = 30

    def __init__(self) -> None:
        self.since: float | None = None
        self._unknown = 0

    def observe(self, connected: int | None, now: float) -> bool:
        """One sample: the connection count (None: unknown, which changes nothing). True once, when the
        clients have stayed out of sight for BLIND_AFTER samples (aiokafka's internals changed?), for the
        caller to log that /healthz cannot tell a lost broker."""
        if connected is None:
            self._unknown += 1
            return self._unknown == self.BLIND_AFTER
        self._unknown = 0
        if connected > 0:
            self.since = None
        elif self.since is None:
            self.since = now
        return False

    def unreachable_for(self, now: float) -> float:
        """Seconds without a connected broker (0 while one is connected).

        >>> r = Reachability()
        >>> r.observe(0, 10.0) or r.observe(None, 12.0) or r.unreachable_for(15.0)
        5.0
        >>> r.observe(2, 16.0) or r.unreachable_for(17.0)
        0.0
        """
        return 0.0 if self.since is None else now - self.since
