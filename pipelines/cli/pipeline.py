"""``gpuwatch pipeline``: the Faust stream-processing worker."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from pipelines.cli import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pipeline", help="run the stream-processing worker (Faust)",
                       description="Consume agent topics, store to ClickHouse, detect, and publish alerts.")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default $GPUWATCH_KAFKA_BOOTSTRAP or 127.0.0.1:9092)")
    p.add_argument("--clickhouse", metavar="DSN", help="chdb:///path or http(s)://user:pass@host:port "
                                                       "(default $GPUWATCH_CLICKHOUSE_DSN or chdb under $GPUWATCH_HOME)")
    p.add_argument("--web-port", type=int, help="port for /query, /metrics, /healthz (default 6066)")
    p.add_argument("--rules", metavar="FILE", help="threshold rules YAML (default: built-in rules)")
    p.add_argument("--topic-prefix", help="prefix for every topic name")
    p.add_argument("--app-id", help="Kafka consumer group / Faust app id (default gpuwatch-pipeline)")
    p.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def settings_from(args: argparse.Namespace):
    from pydantic import ValidationError

    from pipelines.settings import PipelineSettings

    overrides = {k: v for k, v in {
        "kafka_bootstrap": args.bootstrap, "clickhouse_dsn": args.clickhouse, "web_port": args.web_port,
        "rules_file": args.rules, "topic_prefix": args.topic_prefix, "app_id": args.app_id,
        "log_level": args.log_level,
    }.items() if v is not None}
    try:
        return PipelineSettings(**overrides)
    except ValidationError as e:
        first = e.errors()[0]
        raise UsageError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def internal_topic_specs(app) -> list:
    """Faust's own topics (table changelogs, re-keyed streams), created before the worker starts.

    Faust creates them itself, but only once it runs: a table written before the broker's
    metadata shows its changelog's partitions (slower to come with many partitions) crashed the
    processor with ``PartitionsMismatch``.
    """
    from schemas.topics import TopicSpec

    specs = [TopicSpec(t.changelog_topic.get_topic_name(), t.partitions, "table key", f"changelog of {t.name}",
                       {"cleanup.policy": "compact"}) for t in app.tables.values()]
    for agent in app.agents.values():
        ch = agent.channel
        if getattr(ch, "internal", False) and ch.partitions:
            specs.append(TopicSpec(ch.get_topic_name(), ch.partitions, "re-keyed", f"input of {agent.name}"))
    return specs


def with_existing_partitions(settings, counts: dict[str, int]):
    """Settings whose partition counts are the topics' own: topics created before keep theirs.

    Faust's tables must have the partitions of the topics they are co-partitioned with, so the
    worker runs with what the broker has, and says so when that is not what the settings ask.
    """
    from schemas.topics import TOPICS

    actual = {}
    for spec in TOPICS.values():
        wanted = settings.topic_spec(spec)
        have = counts.get(wanted.name, wanted.partitions)
        if have != wanted.partitions:
            print(f"gpuwatch pipeline: topic {wanted.name} has {have} partitions, not the {wanted.partitions} "
                  "configured; using its own (more partitions: kafka-topics --alter, which moves nodes "
                  "between partitions and so between workers)", file=sys.stderr)
        actual[spec.name] = have
    return settings.model_copy(update={"topic_partitions": actual})


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    from pipelines.listen_ports import PortError, any_free_port, check_port_free

    try:
        check_port_free(settings.web_host, settings.web_port, "GPUWATCH_WEB_PORT (or --web-port)")
    except PortError as e:
        raise UsageError(str(e)) from None
    if settings.web_port == 0:  # any free port, as the setting documents (Faust itself refuses 0)
        settings = settings.model_copy(update={"web_port": any_free_port(settings.web_host)})

    from pipelines.transforms.rules import RuleError, RuleSet

    try:  # local files first: a typo is one line now, not after a wait for the broker
        RuleSet.from_file(settings.rules_file)
    except RuleError as e:
        raise UsageError(str(e)) from None

    from kafka_security import KafkaSecurityError, aiokafka_kwargs
    from pipelines.topics_admin import KafkaUnreachable, ensure_topics, partition_counts

    try:
        aiokafka_kwargs(settings.kafka_client_config())  # unusable security settings: one line, now
    except KafkaSecurityError as e:
        print(f"gpuwatch pipeline: error: {e}", file=sys.stderr)
        return 1

    specs = settings.topic_specs()
    try:  # first, before the heavy imports: an unreachable broker is one line within seconds
        ensure_topics(settings.kafka_bootstrap, specs, extra_conf=settings.kafka_client_config(),
                      replication_factor=settings.kafka_replication_factor)
        settings = with_existing_partitions(settings, partition_counts(
            settings.kafka_bootstrap, [s.name for s in specs], settings.kafka_client_config()))
    except KafkaUnreachable as e:
        print(f"gpuwatch pipeline: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - report any broker failure in one line
        print(f"gpuwatch pipeline: error: Kafka at {settings.kafka_bootstrap}: {e}", file=sys.stderr)
        return 1

    from pipelines.app import create_app
    from pipelines.store import ChdbOwner, StoreError, chdb_path, is_chdb

    dsn = settings.dsn()
    if is_chdb(dsn) and chdb_path(dsn):
        owner = ChdbOwner(chdb_path(dsn)).current()
        if owner and owner["pid"] != os.getpid():
            raise UsageError(f"another process (pid {owner['pid']}) already owns {chdb_path(dsn)}; "
                             "chDB allows one process per data path. Stop it, or pass another --clickhouse path.")
    try:
        app = create_app(settings)
    except (StoreError, KafkaSecurityError) as e:
        print(f"gpuwatch pipeline: error: {e}", file=sys.stderr)
        return 1
    try:
        ensure_topics(settings.kafka_bootstrap, internal_topic_specs(app), extra_conf=settings.kafka_client_config(),
                      replication_factor=settings.kafka_replication_factor)
    except Exception as e:  # noqa: BLE001 - report any broker failure in one line
        print(f"gpuwatch pipeline: error: Kafka at {settings.kafka_bootstrap}: {e}", file=sys.stderr)
        return 1
    level = settings.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    BoundedShutdownWorker = _bounded_shutdown_worker()
    worker = BoundedShutdownWorker(app, loglevel=level, quiet=True, redirect_stdouts=False)
    worker.shutdown_timeout_s = settings.shutdown_timeout_s
    from pipelines.log_noise import quiet_worker_logs
    quiet_worker_logs(worker, level)  # library chatter to DEBUG, no spinner codes in log files
    from pipelines.worker_gc import tune_gc_for_streaming
    tune_gc_for_streaming()  # the collector need not rescan start-up objects and buffered rows
    from pipelines.worker_memory import use_system_allocator_for_arrow
    use_system_allocator_for_arrow()  # a flush's Arrow table goes back to the OS once inserted
    sys.setswitchinterval(settings.gil_switch_interval_s)  # fetches and inserts get the GIL back promptly
    worker.execute_from_commandline()
    return 0


def _bounded_shutdown_worker():
    """Faust's worker, except that SIGTERM/SIGINT end the process within ``shutdown_timeout_s``.

    Faust stops cleanly on SIGTERM, but a clean stop waits on the broker
    (commits, producer flush) and the store (the last flush); with either down
    it waited 45-100 s. The clean stop still runs; :func:`exit_within` bounds it.
    """
    from faust import Worker

    from pipelines.shutdown import exit_within

    class BoundedShutdownWorker(Worker):
        shutdown_timeout_s: float = 8.0

        def _on_sigterm(self) -> None:
            exit_within(self.shutdown_timeout_s, "pipeline")
            super()._on_sigterm()

        def _on_sigint(self) -> None:
            exit_within(self.shutdown_timeout_s, "pipeline")
            super()._on_sigint()

    return BoundedShutdownWorker
