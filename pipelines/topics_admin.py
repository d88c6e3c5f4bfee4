"""Create gpuwatch's topics on a broker, idempotently, as ``schemas.topics`` declares them."""

from __future__ import annotations

from schemas.topics import TOPICS, TopicSpec


def ensure_topics(bootstrap: str, specs: list[TopicSpec] | None = None, extra_conf: dict | None = None,
                  timeout: float = 30.0, replication_factor: int = 1) -> list[str]:
    """Create missing topics; returns the names created now."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({**(extra_conf or {}), "bootstrap.servers": bootstrap})
    specs = specs or list(TOPICS.values())
    existing = set(admin.list_topics(timeout=timeout).topics)
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
