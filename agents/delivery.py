"""Getting every agent message to Kafka: directly when it answers, through the spool when not.

States, and what a new message does in each:

* **direct**: the spool is empty and the broker answers; messages go to the
  producer. A message that fails for an outage reason (timeout, transport,
  all brokers down, purge at shutdown) is appended to the spool, and the
  agent switches to **spooling**.
* **spooling**: messages go to the spool. Order is kept exactly: while older
  messages are still in flight in the producer (they may yet fail and be
  spooled), newer ones wait in a short in-memory list. Every ``retry_s`` one
  spooled message is sent as a probe; once it is acknowledged the agent
  replays the spool from its head, in order, committing each acknowledged
  chunk, and returns to **direct** when the spool is empty.

A message the broker will never take (too large, refused by ACLs) is not
spooled, since replaying it would block everything behind it: it is dropped
and counted with its reason.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from agents.publisher import KafkaPublisher
from agents.spool import Spool

log = logging.getLogger("gpuwatch.agent.delivery")

#: Errors that mean "this message can never be delivered", so spooling it would only block the queue.
_PERMANENT = {"MSG_SIZE_TOO_LARGE", "_MSG_SIZE_TOO_LARGE", "INVALID_MSG", "INVALID_RECORD",
              "TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED", "_INVALID_ARG",
              "INVALID_REQUIRED_ACKS", "RECORD_LIST_TOO_LARGE"}
#: Held (not yet spooled) messages kept in memory at most, while in-flight ones settle.
_MAX_HELD = 10_000


class Delivery:
    def __init__(self, kafka_config: dict[str, Any], spool: Spool, *, delivery_timeout_s: float = 15.0,
                 retry_s: float = 5.0, replay_batch: int = 500, replay_budget_s: float = 0.5,
                 max_buffered_kbytes: int = 16 * 1024,
                 publisher_factory: Callable[..., KafkaPublisher] = KafkaPublisher) -> None:
        conf = {"message.timeout.ms": int(delivery_timeout_s * 1000), "error_cb": self._on_error,
                "reconnect.backoff.max.ms": 5000, **kafka_config}
        self.publisher = publisher_factory(conf, max_buffered_kbytes=max_buffered_kbytes)
        self.spool = spool
        self.retry_s = retry_s
        self.replay_batch = replay_batch
        self.replay_budget_s = replay_budget_s
        self.spooling = False
        self._held: list[tuple[str, bytes, bytes]] = []
        self._next_try = 0.0
        self._replay: dict | None = None
        self.counts = {"sent": 0, "direct": 0, "spooled": 0, "replayed": 0, "dropped_permanent": 0,
                       "dropped_spool_error": 0, "outages": 0}
        self.last_error = ""

    # -- producing -------------------------------------------------------------------------
    def send(self, topic: str, key: str, payload: bytes) -> None:
        """Hand one message over; it will reach Kafka or the spool, never neither."""
        self.counts["sent"] += 1
        k = key.encode()
        if not self.spooling and not self._held and self.spool.messages == 0 and self._replay is None:
            self.counts["direct"] += 1
            self.publisher.publish(topic, k, payload, block_s=0.2,
                                   on_result=lambda err: self._direct_result(err, topic, k, payload))
            return
        self._hold(topic, k, payload)

    def _hold(self, topic: str, key: bytes, payload: bytes) -> None:
        if self.publisher.pending() > 0 and len(self._held) < _MAX_HELD:
            self._held.append((topic, key, payload))
        else:
            self._release_held()
            self._to_spool(topic, key, payload)

    def _release_held(self) -> None:
        for rec in self._held:
            self._to_spool(*rec)
        self._held.clear()

    def _to_spool(self, topic: str, key: bytes, payload: bytes) -> None:
        try:
            self.spool.append(topic, key, payload)
            self.counts["spooled"] += 1
        except OSError as e:  # disk full or gone: count the loss, never crash the agent
            self.counts["dropped_spool_error"] += 1
            if self.counts["dropped_spool_error"] == 1 or self.counts["dropped_spool_error"] % 1000 == 0:
                log.error("cannot write to the spool %s (%s): %d message(s) lost so far", self.spool.dir, e,
                          self.counts["dropped_spool_error"])

    def _direct_result(self, err, topic: str, key: bytes, payload: bytes) -> None:
        if err is None:
            return
        if err.name() in _PERMANENT:
            self.counts["dropped_permanent"] += 1
            log.error("Kafka refused a %d-byte message for %s for good (%s); dropped", len(payload), topic, err)
            return
        self._enter_spooling(str(err))
        self._to_spool(topic, key, payload)

    def _on_error(self, err) -> None:
        """librdkafka's client-level errors; 'all brokers down' means spool from now on."""
        self.last_error = str(err)
        if err.name() in ("_ALL_BROKERS_DOWN", "_AUTHENTICATION", "_SSL"):
            self._enter_spooling(str(err))
        elif err.fatal():
            log.error("Kafka producer fatal error: %s", err)

    def _enter_spooling(self, reason: str) -> None:
        self.last_error = reason
        if not self.spooling:
            self.spooling = True
            self.counts["outages"] += 1
            self._next_try = time.monotonic() + self.retry_s
            log.warning("Kafka unreachable (%s): spooling to %s until it answers", reason, self.spool.dir)

    def expedite(self, timeout_s: float = 0.1) -> None:
        """Get what was just sent (an XID) onto the wire now rather than after ``linger.ms``.

        librdkafka's flush sends queued messages at once, ignoring the linger
        wait; the timeout bounds how long a slow broker can hold the caller.
        While spooling there is nothing to flush: the message is on disk.
        """
        if not self.spooling and self.publisher.pending():
            self.publisher.flush(timeout_s)

    # -- replay ----------------------------------------------------------------------------
    def pump(self) -> None:
        """Serve delivery reports, settle held messages and replay the spool. Call once per scrape."""
        self.publisher.poll(0)
        deadline = time.monotonic() + self.replay_budget_s
        while True:
            if self._held and self.publisher.pending() == 0:
                self._release_held()
            if self._replay is not None:
                if self._replay["outstanding"] > 0:
                    if time.monotonic() >= deadline:
                        return
                    self.publisher.poll(0.02)
                    continue
                self._finish_replay()
                if self.spooling:
                    return
            if self.spool.messages == 0 or self.publisher.pending() > 0:
                return
            if self.spooling and time.monotonic() < self._next_try:
                return
            if time.monotonic() >= deadline:
                return
            self._start_replay(1 if self.spooling else self.replay_batch)

    def _start_replay(self, n: int) -> None:
        records, token = self.spool.peek(n)
        if not records:
            self.spool.commit(token)
            return
        state = {"token": token, "outstanding": len(records), "failed": 0, "error": "", "n": len(records)}
        self._replay = state

        def result(err, state=state) -> None:
            state["outstanding"] -= 1
            if err is not None and err.name() not in _PERMANENT:
                state["failed"] += 1
                state["error"] = str(err)
            elif err is not None:
                self.counts["dropped_permanent"] += 1

        for topic, key, value in records:
            self.publisher.publish(topic, key, value, block_s=1.0, on_result=result)

    def _finish_replay(self) -> None:
        state, self._replay = self._replay, None
        if state["failed"]:
            self.spooling = True
            self._next_try = time.monotonic() + self.retry_s
            log.debug("spool replay failed (%s); next try in %.0fs", state["error"], self.retry_s)
            return
        self.spool.commit(state["token"])
        self.counts["replayed"] += state["n"]
        if self.spooling:
            self.spooling = False
            log.warning("Kafka answers again: replaying %d spooled message(s)", self.spool.messages + state["n"])
        if self.spool.messages == 0:
            log.info("spool drained; %d message(s) replayed in all", self.counts["replayed"])

    # -- shutdown --------------------------------------------------------------------------
    def close(self, timeout_s: float = 10.0) -> int:
        """Flush what Kafka will take within ``timeout_s``; spool the rest. Returns messages left spooled."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and (self._replay is not None or self._held or
                                               (self.spool.messages and not self.spooling)):
            self.pump()
            if self.spooling:
                break
        remaining = max(0.0, deadline - time.monotonic())
        if self.publisher.flush(remaining) > 0:
            self.publisher.purge()  # their failures land in the spool through _direct_result
            self.publisher.flush(1.0)
        if self._replay is not None and self._replay["outstanding"] == 0:
            self._finish_replay()  # acknowledged replays must not be replayed again next start
        self._replay = None
        self._release_held()
        self.spool.close()
        return self.spool.messages

    def stats(self) -> dict[str, int]:
        return {**self.counts, "spool_messages": self.spool.messages, "spool_bytes": self.spool.bytes,
                "spool_dropped": self.spool.dropped, "pending": self.publisher.pending()}


__all__ = ["Delivery"]
