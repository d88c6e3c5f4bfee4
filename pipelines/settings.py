"""Settings shared by every gpuwatch process: where Kafka and ClickHouse are.

One frozen object per process, read from ``GPUWATCH_*`` environment variables
(and a ``.env`` file if present). Component settings extend it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kafka_security import client_config
from schemas.topics import TOPICS, TopicSpec


def is_chdb_dsn(dsn: str) -> bool:
    return dsn.startswith("chdb://")


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GPUWATCH_", env_file=".env", extra="ignore", frozen=True)

    #: Working directory for local state: chDB data, Kafka data, spools, notification log.
    home: Path = Field(default=Path("var"))
    #: Unset: the broker `gpuwatch up` started for this home (``run/stack.json``), else 127.0.0.1:9092.
    kafka_bootstrap: str = Field(default_factory=lambda data: __import__(
        "pipelines.local_stack").local_stack.bootstrap_for(data.get("home", "var")))
    #: Extra librdkafka settings as JSON, e.g. '{"security.protocol": "SASL_SSL", ...}'.
    kafka_security: dict[str, str] = Field(default_factory=dict)
    kafka_sasl_password: SecretStr | None = None
    #: Replication factor for topics gpuwatch creates (1 for a single local broker, 3 in production).
    kafka_replication_factor: int = Field(default=1, ge=1, le=7)
    #: ``chdb:///path`` (embedded, default under ``home``) or ``http(s)://user:pass@host:port``.
    clickhouse_dsn: str = ""
    clickhouse_database: str = "gpuwatch"
    #: A ``<remote_servers>`` cluster name: tables are created replicated and sharded across it
    #: (schemas/ddl_cluster.py). Empty for chDB or a single server.
    clickhouse_cluster: str = Field(default="", pattern=r"^([A-Za-z_][A-Za-z0-9_.-]{0,63})?$")
    #: Where user queries go on a ClickHouse server: a read-only user (``analyst``); default the DSN above.
    clickhouse_query_dsn: str = ""
    #: Prepended as ``PREFIX.`` to every topic name (isolates tests and environments sharing a cluster).
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_-]*$")
    #: Partitions of the topics gpuwatch creates, by short or full topic name, as JSON, e.g.
    #: '{"metrics": 128, "logs": 128, "events": 128, "heartbeats": 128}'. Partitions are the ceiling on
    #: workers; unset, schemas/topics.py's (64 for the node-keyed topics). Only topics not yet created
    #: take it: Kafka can add partitions later, but that moves nodes (and their state) between them.
    topic_partitions: dict[str, int] = Field(default_factory=dict)
    #: Limits on each user query (``gpuwatch query``, ``POST /query``), enforced by ClickHouse; 0 = none.
    query_timeout_s: float = Field(default=30.0, ge=0, le=3600)
    query_max_memory_bytes: int = Field(default=1_000_000_000, ge=0)
    query_max_rows_to_read: int = Field(default=10_000_000_000, ge=0)
    query_max_result_rows: int = Field(default=1_000_000, ge=0)
    #: Bytes a result may hold: the answer is built in the worker's memory (a few times its size, as JSON),
    #: so without this a query of a few GB of result could take the pipeline down with it.
    query_max_result_bytes: int = Field(default=100_000_000, ge=0)
    #: Cores one user query may use; 0 = half of this machine's.
    query_max_threads: int = Field(default=0, ge=0)
    #: Bearer token ``POST /query`` requires; without one, /query answers only on a loopback address.
    query_token: SecretStr | None = None

    @field_validator("home", mode="before")
    @classmethod
    def _home_given(cls, v):
        """``GPUWATCH_HOME=`` (set but empty) is the default ``var``, not the current directory."""
        return Path("var") if isinstance(v, str) and not v.strip() else v

    @field_validator("topic_partitions")
    @classmethod
    def _known_topics(cls, v: dict[str, int]) -> dict[str, int]:
        short = {t.name.split(".")[1]: t.name for t in TOPICS.values()}
        out: dict[str, int] = {}
        for name, n in v.items():
            full = short.get(name, name)
            if full not in TOPICS:
                raise ValueError(f"GPUWATCH_TOPIC_PARTITIONS names {name!r}, which is not a gpuwatch topic; "
                                 f"use one of {', '.join(sorted(short))}")
            if not 1 <= n <= 10_000:
                raise ValueError(f"GPUWATCH_TOPIC_PARTITIONS: {name} must have 1 to 10000 partitions, not {n}")
            out[full] = n
        node_keyed = {t.name: out.get(t.name, t.partitions) for t in TOPICS.values() if t.key == "node"}
        if len(set(node_keyed.values())) > 1:
            raise ValueError("GPUWATCH_TOPIC_PARTITIONS: the node-keyed topics (metrics, logs, events, heartbeats) "
                             "must have the same partition count, so a node's state lives on one worker; got "
                             + ", ".join(f"{k.split('.')[1]}={n}" for k, n in node_keyed.items()))
        return out

    @field_validator("clickhouse_dsn", "clickhouse_query_dsn")
    @classmethod
    def _dsn_scheme(cls, v: str, info: ValidationInfo) -> str:
        if v and not v.startswith(("chdb://", "http://", "https://")):
            raise ValueError(f"GPUWATCH_{info.field_name.upper()} must start with chdb://, http:// or https://")
        return v

    @field_validator("clickhouse_cluster")
    @classmethod
    def _cluster_needs_server(cls, v: str, info) -> str:
        if v and not str(info.data.get("clickhouse_dsn", "")).startswith(("http://", "https://")):
            raise ValueError("GPUWATCH_CLICKHOUSE_CLUSTER needs a ClickHouse server: set GPUWATCH_CLICKHOUSE_DSN "
                             "to http(s)://..., or leave the cluster empty for embedded chDB")
        return v
    #: librdkafka's own log level (syslog numbers): 2 keeps its connection chatter quiet, 7 is debug.
    kafka_client_log_level: int = Field(default=2, ge=0, le=7)
    #: After SIGTERM, a process that has not stopped cleanly in this many seconds exits anyway.
    shutdown_timeout_s: float = Field(default=8.0, gt=0, le=600)

    def dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{(self.home / 'clickhouse').absolute()}"

    def query_dsn(self) -> str:
        """Where user SQL runs: on chDB the same path (one process owns it), on a server a read-only user."""
        return self.clickhouse_query_dsn if self.clickhouse_query_dsn and not is_chdb_dsn(self.dsn()) else self.dsn()

    def topic(self, name: str) -> str:
        """
        >>> CommonSettings(topic_prefix="staging", _env_file=None).topic("gpuwatch.alerts.v1")
        'staging.gpuwatch.alerts.v1'
        """
        return f"{self.topic_prefix}.{name}" if self.topic_prefix else name

    def topic_spec(self, spec: TopicSpec) -> TopicSpec:
        """``spec`` as this deployment creates it: prefixed name, configured partitions.

        >>> from schemas.topics import METRICS
        >>> s = CommonSettings(topic_prefix="t1", topic_partitions={"metrics": 8, "logs": 8, "events": 8,
        ...                    "heartbeats": 8}, _env_file=None)
        >>> s.topic_spec(METRICS).name, s.topic_spec(METRICS).partitions
        ('t1.gpuwatch.metrics.v1', 8)
        """
        return TopicSpec(self.topic(spec.name), self.topic_partitions.get(spec.name, spec.partitions), spec.key,
                         spec.purpose, spec.config)

    def topic_specs(self) -> list[TopicSpec]:
        return [self.topic_spec(t) for t in TOPICS.values()]

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka settings common to every producer and consumer."""
        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password is not None else None
        return client_config(self.kafka_bootstrap, {"log_level": str(self.kafka_client_log_level),
                                                    **self.kafka_security}, password)


class PipelineSettings(CommonSettings):
    """The stream processor's knobs. Defaults suit one worker on one machine."""

    app_id: str = "gpuwatch-pipeline"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=0, le=65535)
    #: Threshold rule file; empty means the built-in ``pipelines/rules/default.yaml``.
    rules_file: Path | None = None
    window_s: int = Field(default=60, ge=1)
    window_grace_s: float = Field(default=5.0, ge=0)
    #: Close a silent node's open windows after this much wall time.
    window_idle_close_s: float = Field(default=10.0, gt=0)
    flush_interval_s: float = Field(default=1.0, gt=0)
    #: How long rows may wait for an insert while the worker catches up on a backlog (the newest row
    #: buffered is older than this): fewer, larger inserts, so fewer parts for ClickHouse to merge.
    #: At least flush_interval_s.
    flush_backlog_interval_s: float = Field(default=5.0, gt=0)
    flush_max_rows: int = Field(default=200_000, ge=1)
    #: Rows that may wait for a slow or failing store; past this, consumption pauses and /healthz says so.
    max_buffered_rows: int = Field(default=2_000_000, ge=1)
    #: Longest wait between retries of a failed insert (short, so storage catches up soon after recovery).
    insert_retry_max_s: float = Field(default=2.0, gt=0, le=60)
    #: Metric batches buffered ahead of the metrics processor, per partition: past this, fetching that
    #: partition pauses. The buffer serves partitions in turn (pipelines/processors/fair_buffer.py), so a
    #: breach on a quiet partition waits for at most one batch of each backlogged one (issue 11).
    metrics_partition_buffer: int = Field(default=32, ge=1)
    #: All metric batches buffered, over every partition (Faust's fetch loop waits past this).
    metrics_stream_buffer: int = Field(default=1024, ge=1)
    #: Records handed over per fetch (Faust's ``broker_max_poll_records``): each fetch is drained
    #: before the next, so a large one holds back node events and quiet partitions.
    max_poll_records: int = Field(default=50, ge=1)
    #: Records handed over per fetch while the worker catches up on a backlog (pipelines/kafka_fetch.py):
    #: no quiet partition waits then, and each poll is a round trip between Faust's two threads.
    backlog_max_poll_records: int = Field(default=500, ge=1)
    #: Bytes fetched per partition per fetch request (Faust's ``consumer_max_fetch_size``, 1 MiB by
    #: default). A fetch to a broker carries every partition it leads, and the next one waits until this
    #: one's records are taken; small chunks from backlogged partitions let a quiet partition's sample
    #: through sooner. 64 KiB: breach -> webhook p99 under ingest 0.33-1.41 s against 0.62-1.74 s at
    #: 1 MiB, lower in each of 4 paired runs, ingest higher (bench/alert_latency.py, issue 11). A record
    #: batch larger than this is still read whole.
    kafka_max_partition_fetch_bytes: int = Field(default=65_536, ge=1024)
    #: Bytes per partition per fetch while the worker catches up on a backlog (the newest metric batch it
    #: handled is older than flush_backlog_interval_s): no quiet partition's sample waits behind the chunks
    #: then, and every fetch round costs the same Python work whatever it brings (pipelines/kafka_fetch.py).
    kafka_backlog_partition_fetch_bytes: int = Field(default=1_048_576, ge=1024)
    #: Longest the broker holds a fetch when no partition in it has data (Faust fixes aiokafka's at 1.5 s).
    #: 50 ms was worse in 2 runs (breach p99 0.68-0.93 s, ingest down to 5.7-12.8k samples/s).
    kafka_fetch_max_wait_ms: int = Field(default=1500, ge=0, le=60_000)
    #: Longest the consumer holds back the next fetch while fetched records wait to be taken (aiokafka's
    #: ``prefetch_backoff``, 100 ms): paused and backlogged partitions always have some waiting, so
    #: every fetch cycle waited for it, and a quiet partition's sample waited for one or two cycles.
    #: Once the processors stopped waiting for inserts and gave the loop up between batches, 10 ms
    #: took the breach's pipeline stage under ingest from p50 211-323 ms to 8-20 ms (bench/alert_latency.py).
    kafka_prefetch_backoff_ms: int = Field(default=10, ge=0, le=10_000)
    #: Unread messages over all partitions past which /healthz answers 503.
    max_consumer_lag: int = Field(default=500_000, ge=1)
    #: Seconds without a connection to any Kafka broker past which /healthz answers 503 (a broker restart
    #: or a leader moving takes a few seconds; the lag cannot tell a dead broker, it reads 0).
    kafka_unreachable_after_s: float = Field(default=15.0, gt=0)
    #: Largest message accepted; larger ones are dead-lettered.
    max_message_bytes: int = Field(default=1_048_576, ge=1024)
    #: How soon the group notices a dead worker and hands its partitions on (Faust's default is 60 s).
    kafka_session_timeout_s: float = Field(default=15.0, ge=6, le=300)
    #: Detection config YAML; empty means the built-in ``pipelines/detect/detection.yaml``.
    detection_file: Path | None = None
    #: How far wall time may run ahead of the newest heartbeat before silence is judged on wall time.
    absence_lateness_s: float = Field(default=30.0, ge=0)
    #: How often detector state is checkpointed to its changelog table, per node. A checkpoint pickles
    #: the node's models (tens of ms each), so this is a CPU cost per node and second: at 10 s it was a
    #: fifth of the pipeline's time. A restarted worker replays the rest from Kafka into its detectors.
    checkpoint_interval_s: float = Field(default=60.0, gt=0)
    #: How often the worker freezes the objects that survived the young collections, so a full
    #: collection never walks every series' state (pipelines/worker_gc.py). 0: never.
    gc_freeze_interval_s: float = Field(default=5.0, ge=0)
    #: How often the frozen objects are collected too (one longer pause; frees cycles among them). 0: never.
    gc_full_interval_s: float = Field(default=3600.0, ge=0)
    #: How long a thread may hold the GIL while another waits for it (CPython's default: 5 ms). The
    #: Kafka consumer's thread and the inserts' thread give the GIL up at every socket call and must
    #: wait this long to get it back while the processors run: a fetch waited several such turns.
    gil_switch_interval_s: float = Field(default=0.0005, gt=0, le=0.1)
    log_level: str = "info"

    @field_validator("flush_backlog_interval_s")
    @classmethod
    def _backlog_interval_at_least_live(cls, v: float, info: ValidationInfo) -> float:
        """Never below flush_interval_s: it is also the lag that means "catching up", and below the live
        interval a live worker would be taken for one behind (and fetch for throughput, not latency)."""
        return max(v, info.data.get("flush_interval_s", v))
