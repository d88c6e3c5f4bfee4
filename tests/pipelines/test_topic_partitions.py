"""Partitions are the ceiling on workers: configurable per topic, 64 by default for node-keyed topics."""

from __future__ import annotations

import time
import uuid

import pytest
from pydantic import ValidationError

from pipelines.cli.pipeline import with_existing_partitions
from pipelines.settings import PipelineSettings
from pipelines.topics_admin import ensure_topics, partition_counts
from schemas.topics import EVENTS, METRICS


def settings(**kw) -> PipelineSettings:
    return PipelineSettings(_env_file=None, **kw)


def test_node_keyed_topics_have_room_for_64_workers_by_default():
    s = settings()
    assert {s.topic_spec(t).partitions for t in s.topic_specs() if t.key == "node"} == {64}


def test_partitions_are_set_per_topic_by_short_or_full_name():
    node = {"metrics": 128, "gpuwatch.logs.v1": 128, "events": 128, "heartbeats": 128}
    s = settings(topic_partitions={**node, "alerts": 12})
    counts = {t.name: t.partitions for t in s.topic_specs()}
    assert counts["gpuwatch.metrics.v1"] == 128 and counts["gpuwatch.logs.v1"] == 128
    assert counts["gpuwatch.alerts.v1"] == 12 and counts["gpuwatch.deadletter.v1"] == 3


def test_node_keyed_topics_must_agree_and_names_must_be_known():
    with pytest.raises(ValidationError, match="same partition count.*metrics=128"):
        settings(topic_partitions={"metrics": 128})
    with pytest.raises(ValidationError, match="'metric', which is not a gpuwatch topic"):
        settings(topic_partitions={"metric": 8})
    with pytest.raises(ValidationError, match="1 to 10000"):
        settings(topic_partitions={"alerts": 0})


def test_the_setting_reaches_the_broker_and_an_older_topic_keeps_its_count(bootstrap):
    s = settings(topic_prefix=f"p{uuid.uuid4().hex[:8]}",
                 topic_partitions={"metrics": 9, "logs": 9, "events": 9, "heartbeats": 9})
    old_events = s.topic_spec(EVENTS)
    ensure_topics(bootstrap, [type(old_events)(old_events.name, 2, "node", "created earlier")])
    ensure_topics(bootstrap, s.topic_specs())
    counts = partition_counts(bootstrap, [t.name for t in s.topic_specs()])
    assert counts[s.topic_spec(METRICS).name] == 9 and counts[old_events.name] == 2
    running = with_existing_partitions(s, counts)  # the worker runs with what the broker has
    assert running.topic_spec(METRICS).partitions == 9 and running.topic_spec(EVENTS).partitions == 2


def test_the_notifier_creates_its_topics_with_the_configured_partitions(bootstrap):
    """A notifier started before the pipeline must not fix the alerts topic at the contract's default."""
    from pipelines.notify.kafka_io import ensure_notify_topics
    from pipelines.notify.settings import NotifySettings
    from schemas.topics import ALERTS, DEADLETTER

    s = NotifySettings(_env_file=None, kafka_bootstrap=bootstrap, topic_prefix=f"n{uuid.uuid4().hex[:8]}",
                       topic_partitions={"alerts": 5, "deadletter": 4})
    ensure_notify_topics(s)
    for _ in range(100):  # a topic created a moment ago may report no leader yet: it is left out until it does
        counts = partition_counts(bootstrap, [s.alerts_topic(), s.deadletter_topic()])
        if len(counts) == 2:
            break
        time.sleep(0.1)
    assert counts == {s.alerts_topic(): 5, s.deadletter_topic(): 4}
    assert ALERTS.partitions != 5 and DEADLETTER.partitions != 4
