"""Agent, pipeline and notifier read Kafka security settings one way (kafka_security).

The shipped Kubernetes config is SASL_SSL with SCRAM; the notifier used to have
a translation of its own that built no TLS context, so it could not even
construct its Kafka clients under that config.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def shipped_security() -> dict:
    cm = yaml.safe_load((ROOT / "infra" / "k8s" / "configmap.yaml").read_text())
    return orjson.loads(cm["data"]["GPUWATCH_KAFKA_SECURITY"])


def test_the_notifier_builds_its_kafka_clients_under_the_shipped_sasl_ssl_config():
    from pipelines.notify.kafka_io import AlertConsumer, make_producer
    from pipelines.notify.metrics import NotifyMetrics
    from pipelines.notify.settings import NotifySettings

    security = shipped_security()
    assert security["security.protocol"] == "SASL_SSL"
    settings = NotifySettings(_env_file=None, kafka_security=security, kafka_sasl_password="s3cret")

    async def build():
        producer = make_producer(settings)
        consumer = AlertConsumer(settings, lambda alerts: 0, NotifyMetrics(), producer)
        return producer, consumer

    producer, consumer = asyncio.run(build())
    for client in (producer.client, consumer.consumer._client):
        assert client._security_protocol == "SASL_SSL"
        assert client._ssl_context is not None
        assert client._sasl_mechanism == "SCRAM-SHA-512" and client._sasl_plain_username == "gpuwatch"


def test_pipeline_and_notifier_translate_alike():
    from kafka_security import aiokafka_kwargs
    from pipelines.kafka_auth import faust_credentials
    from pipelines.notify.kafka_io import aiokafka_security
    from pipelines.notify.settings import NotifySettings
    from pipelines.settings import PipelineSettings

    security = shipped_security()
    pipeline = PipelineSettings(_env_file=None, kafka_security=security, kafka_sasl_password="s3cret")
    notify = NotifySettings(_env_file=None, kafka_security=security, kafka_sasl_password="s3cret")
    assert pipeline.kafka_client_config() == notify.kafka_client_config()
    creds = faust_credentials(pipeline.kafka_client_config())
    kw = aiokafka_security(notify)
    assert (creds.username, creds.password, creds.mechanism.value) == \
        (kw["sasl_plain_username"], kw["sasl_plain_password"], kw["sasl_mechanism"])
    assert creds.ssl_context is not None and kw["ssl_context"] is not None
    assert set(kw) == set(aiokafka_kwargs(pipeline.kafka_client_config()))


def test_the_agent_assembles_the_same_librdkafka_settings():
    from agents.config import KafkaConfig
    from pipelines.settings import CommonSettings

    security = shipped_security()
    agent = KafkaConfig(bootstrap="b1:9093", security=security, sasl_password="s3cret").client_config()
    common = CommonSettings(_env_file=None, kafka_bootstrap="b1:9093", kafka_security=security,
                            kafka_sasl_password="s3cret").kafka_client_config()
    assert agent == {k: v for k, v in common.items() if k != "log_level"}


@pytest.mark.parametrize("security,named", [
    ({"security.protocol": "SASL_SSL", "sasl.mechanism": "GSSAPI", "sasl.username": "u"}, "sasl.mechanism 'GSSAPI'"),
    ({"security.protocol": "TLS"}, "security.protocol 'TLS'"),
    ({"security.protocol": "SSL", "ssl.ca.location": "/nonexistent/ca.pem"}, "cannot load the TLS files"),
])
def test_unusable_security_settings_are_one_line_from_pipeline_and_notifier(tmp_path, security, named):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GPUWATCH_HOME": str(tmp_path), "GPUWATCH_WEB_PORT": "0",
           "GPUWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:1", "GPUWATCH_KAFKA_SECURITY": orjson.dumps(security).decode(),
           "GPUWATCH_KAFKA_SASL_PASSWORD": "s3cret"}
    for args in (["pipeline"], ["notify", "--webhook", "http://127.0.0.1:9/hook", "--listen", "127.0.0.1:0"]):
        r = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode != 0
        assert len(r.stderr.strip().splitlines()) == 1 and named in r.stderr, (args, r.stderr)
