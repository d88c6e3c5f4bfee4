"""Is this worker doing its job? The answer /healthz gives, from the numbers /metrics exports.

Unhealthy (503) when any of these holds, each with a reason a person can act on:

* inserts are failing: the last attempt to store a batch failed and it waits for a retry;
* the sink is over its bound: consumption is paused until the store catches up;
* consumer lag is over ``max_consumer_lag`` messages: the worker is falling behind;
* no Kafka broker has been connected for ``unreachable_after_s`` (:mod:`pipelines.kafka_reachability`):
  nothing is read or sent, and the lag, which only counts what can be seen, reads 0.

:func:`refresh` sets the gauges and :func:`report` reads them back from the
same registry, so a scrape of /metrics and a call to /healthz made together say
the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pipelines import telemetry


@dataclass(frozen=True)
class Health:
    ok: bool
    reasons: list[str] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "unhealthy", "reasons": self.reasons, **self.numbers}


def consumer_lag(consumer: Any, read_offsets: dict[tuple[str, int], int]) -> int | None:
    """Messages on the broker not read yet, over the assigned partitions read so far (None if unknown)."""
    try:
        assigned = consumer.assignment()
    except Exception:  # no consumer yet (starting), or it is being rebalanced
        return None
    lag = 0
    for tp in assigned:
        read = read_offsets.get((tp.topic, tp.partition))
        try:
            high = consumer.highwater(tp)
        except Exception:
            continue
        if read is not None and high is not None:
            lag += max(0, int(high) - (read + 1))
    return lag


def refresh(ctx: Any, lag: int | None) -> None:
    """Set the health gauges from the worker's state now."""
    sink = ctx.sink
    telemetry.BUFFERED_ROWS.set(sink.buffered_rows())
    telemetry.BUFFER_LIMIT.set(sink.max_buffered_rows)
    telemetry.INSERTS_FAILING.set(sink.stats.consecutive_failures)
    telemetry.UNACKED.set(ctx.ledger.pending())
    if lag is not None:
        telemetry.CONSUMER_LAG.set(lag)


def report(ctx: Any, max_consumer_lag: int, lag: Callable[[], int | None] = lambda: None,
           unreachable_s: Callable[[], float] = lambda: 0.0, unreachable_after_s: float = 15.0) -> Health:
    """Refresh the gauges, then judge from what they hold."""
    refresh(ctx, lag())
    telemetry.KAFKA_UNREACHABLE.set(unreachable_s())
    value = telemetry.REGISTRY.get_sample_value
    numbers = {
        "buffered_rows": value("gpuwatch_sink_buffered_rows") or 0.0,
        "buffer_limit_rows": value("gpuwatch_sink_buffer_limit_rows") or 0.0,
        "consecutive_insert_failures": value("gpuwatch_sink_consecutive_failures") or 0.0,
        "unacked_messages": value("gpuwatch_unacked_messages") or 0.0,
        "consumer_lag_messages": value("gpuwatch_consumer_lag_messages") or 0.0,
        "max_consumer_lag": float(max_consumer_lag),
        "kafka_unreachable_s": value("gpuwatch_kafka_unreachable_seconds") or 0.0,
    }
    reasons = []
    if numbers["consecutive_insert_failures"] > 0:
        reasons.append(f"inserts failing ({numbers['consecutive_insert_failures']:.0f} attempts in a row, "
                       f"{numbers['buffered_rows']:.0f} rows waiting): {ctx.sink.stats.last_error}")
    if numbers["buffered_rows"] >= numbers["buffer_limit_rows"] > 0:
        reasons.append(f"sink buffer over its bound ({numbers['buffered_rows']:.0f} >= "
                       f"{numbers['buffer_limit_rows']:.0f} rows): consumption paused until the store catches up")
    if numbers["consumer_lag_messages"] > max_consumer_lag:
        reasons.append(f"consumer lag {numbers['consumer_lag_messages']:.0f} messages is over the limit "
                       f"{max_consumer_lag} (GPUWATCH_MAX_CONSUMER_LAG)")
    if numbers["kafka_unreachable_s"] >= unreachable_after_s:
        reasons.append(f"Kafka unreachable for {numbers['kafka_unreachable_s']:.0f} s: no connection to any broker, "
                       "so nothing is read, stored or sent (GPUWATCH_KAFKA_BOOTSTRAP)")
    telemetry.HEALTHY.set(0 if reasons else 1)
    return Health(not reasons, reasons, numbers)
