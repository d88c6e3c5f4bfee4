"""Create gpuwatch's topics on a broker, idempotently, as ``schemas.topics`` declares them."""

from __future__ import annotations

from typing import Any

from schemas.topics import TOPICS, TopicSpec


#: How long a process waits for the broker at start before it says it cannot reach it.
REACH_TIMEOUT_S = 6.0


class KafkaUnreachable(RuntimeError):
    """The broker did not answer in time; the text says where and why, in one line."""


def _admin(bootstrap: str, extra_conf: dict | None) -> Any:
    from confluent_kafka.admin import AdminClient

    # librdkafka logs every failed connection attempt (hundreds of lines) unless told otherwise;
    # the one line that matters is the error raised below. GPUWATCH_KAFKA_SECURITY may set log_level.
    return AdminClient({"log_level": 2, **(extra_conf or {}), "bootstrap.servers": bootstrap})


def list_topic_names(admin: Any, bootstrap: str, timeout: float = REACH_TIMEOUT_S) -> set[str]:
    """The broker's topics, or :class:`KafkaUnreachable` after ``timeout``."""
    from confluent_kafka import KafkaException

    try:
        return set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as e:
        err = e.args[0] if e.args else e
        reason = err.str() if hasattr(err, "str") else str(err)
        raise KafkaUnreachable(f"cannot reach Kafka at {bootstrap} within {timeout:g} s: {reason} "
                               "(check GPUWATCH_KAFKA_BOOTSTRAP and GPUWATCH_KAFKA_SECURITY)") from None


def check_reachable(conf: dict, timeout: float = REACH_TIMEOUT_S) -> None:
    """Raise :class:`KafkaUnreachable` unless the broker in librdkafka ``conf`` answers in time."""
    bootstrap = conf.get("bootstrap.servers", "")
    list_topic_names(_admin(bootstrap, conf), bootstrap, timeout)


def partition_counts(bootstrap: str, names: list[str], extra_conf: dict | None = None,
                     timeout: float = REACH_TIMEOUT_S) -> dict[str, int]:
    """Partitions each of ``names`` has on the broker now (topics that do not exist are left out)."""
    md = _admin(bootstrap, extra_conf).list_topics(timeout=timeout)
    return {n: len(md.topics[n].partitions) for n in names if n in md.topics and md.topics[n].error is None}


def ensure_topics(bootstrap: str, specs: list[TopicSpec] | None = None, extra_conf: dict | None = None,
                  timeout: float = REACH_TIMEOUT_S, replication_factor: int = 1) -> list[str]:
    """Create missing topics; returns the names created now."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    admin = _admin(bootstrap, extra_conf)
    specs = specs or list(TOPICS.values())
    existing = list_topic_names(admin, bootstrap, timeout)
    wanted = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=replication_factor,
                       config=dict(s.config))
              for s in specs if s.name not in existing]
    created = []
    for name, fut in admin.create_topics(wanted, operation_timeout=timeout).items() if wanted else []:
        try:
            fut.result()
            created.append(name)
        except KafkaException as e:
            if e.args[0].code() != 36:  # TOPIC_ALREADY_EXISTS: another process won the race
                raise
    return created
