"""History records: rows other workers want in ClickHouse, sent through Kafka.

Only the pipeline process writes to ClickHouse (chDB allows one process per data
path, and one writer keeps batching and deduplication in one place). A worker
such as the notifier publishes a :class:`HistoryRecord` naming the table and the
row; the pipeline's history processor stores it. Tables must be listed in
:data:`HISTORY_TABLES`, so a bad record cannot write anywhere else.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from schemas.base import WireModel

#: Tables a HistoryRecord may target, each with the columns a row must carry.
#: Each table's DDL lives in a migration under ``schemas/clickhouse/``.
HISTORY_TABLES: dict[str, tuple[str, ...]] = {
    # Notifier (schemas/clickhouse/003_notify.sql); timestamps are float epoch seconds.
    "notification_attempts": ("ts", "receiver", "integration", "group_key", "status", "fingerprints",
                              "alert_count", "attempt", "outcome", "recoverable", "error", "duration_ms"),
    "silences": ("ts", "silence_id", "action", "matchers", "starts_at", "ends_at", "created_by", "comment"),
    "alert_acks": ("ts", "fingerprint", "action", "owner", "comment", "starts_at", "alertname", "node",
                   "labels"),
}


class HistoryRecord(WireModel):
    v: Literal[1] = 1
    kind: Literal["history"] = "history"
    table: str = Field(max_length=64)
    row: dict[str, Any]

    @field_validator("table")
    @classmethod
    def _known_table(cls, table: str) -> str:
        if table not in HISTORY_TABLES:
            raise ValueError(f"unknown history table {table!r}; known: {sorted(HISTORY_TABLES)}")
        return table
