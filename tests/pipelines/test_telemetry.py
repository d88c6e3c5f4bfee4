"""Cumulative counts are exported as Prometheus counters, so rate() and increase() work on them."""

from __future__ import annotations

from pipelines import telemetry


def test_cumulative_counts_are_counters_and_drops_have_a_reason():
    types = {m.name: m.type for m in telemetry.REGISTRY.collect()}
    for name in ("gpuwatch_insert_errors", "gpuwatch_late_samples", "gpuwatch_rows_dropped",
                 "gpuwatch_messages_dead_lettered", "gpuwatch_rows_written"):
        assert types.get(name) == "counter", (name, types.get(name))
    dropped = next(m for m in telemetry.REGISTRY.collect() if m.name == "gpuwatch_rows_dropped")
    assert "reason" in dropped.documentation.lower() or telemetry.ROWS_DROPPED._labelnames == ("table", "reason")
