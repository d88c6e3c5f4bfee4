"""The gpuwatch contract: message models, topics and ClickHouse DDL.

Everything that crosses a process boundary is defined here, once. This package
imports nothing from ``agents`` or ``pipelines``, so both sides can depend on it
and neither can change the wire format behind the other's back.
"""

from schemas.alerts import AlertEvent, AlertStatus, Evidence, Severity, alert_fingerprint
from schemas.codec import MAX_PAYLOAD_BYTES, SchemaError, decode, encode
from schemas.deadletter import DeadLetter
from schemas.events import Heartbeat, NodeEvent
from schemas.logs import LogBatch, LogRecord
from schemas.metrics import MetricBatch, MetricSample
from schemas.topics import TOPICS, TopicSpec

__all__ = [
    "AlertEvent",
    "AlertStatus",
    "DeadLetter",
    "Evidence",
    "Heartbeat",
    "LogBatch",
    "LogRecord",
    "MAX_PAYLOAD_BYTES",
    "MetricBatch",
    "MetricSample",
    "NodeEvent",
    "SchemaError",
    "Severity",
    "TOPICS",
    "TopicSpec",
    "alert_fingerprint",
    "decode",
    "encode",
]
