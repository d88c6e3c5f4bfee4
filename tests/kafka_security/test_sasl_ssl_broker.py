"""Agent, pipeline and notifier all work against a real broker that takes SASL_SSL only (SCRAM-SHA-512 over TLS).

The broker is the project's local Kafka with one more listener: TLS with a
certificate made here by a test CA, and SCRAM credentials added when its
storage is formatted. The clients get exactly what an operator would set:
GPUWATCH_KAFKA_SECURITY (librdkafka names) and GPUWATCH_KAFKA_SASL_PASSWORD.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from infra.kafka.broker import LocalKafka, free_port
from tests.stack import Stack, wait_for

USER, PASSWORD = "gpuwatch", "scram-s3cret"


def make_tls(d: Path) -> tuple[Path, Path]:
    """A CA and a server certificate for 127.0.0.1; returns (CA file, PEM keystore: key + certificate)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=gpuwatch-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "server.key", "-out", "server.pk8")
    (d / "keystore.pem").write_text((d / "server.pk8").read_text() + (d / "server.pem").read_text())
    return d / "ca.pem", d / "keystore.pem"


class SaslSslKafka(LocalKafka):
    """The local broker plus a SASL_SSL listener on ``sasl_port`` with one SCRAM-SHA-512 user."""

    sasl_port: int = 0
    keystore: Path = Path()

    def _write_config(self) -> Path:
        props = super()._write_config()
        text = props.read_text()
        plain = f"PLAINTEXT://127.0.0.1:{self.port}"
        sasl = f"SASL_SSL://127.0.0.1:{self.sasl_port}"
        text = text.replace(f"listeners={plain},", f"listeners={plain},{sasl},")
        text = text.replace(f"advertised.listeners={plain}", f"advertised.listeners={plain},{sasl}")
        text = text.replace("PLAINTEXT:PLAINTEXT", "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL")
        text += "\n".join([
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.keystore}",
            "",
        ])
        props.write_text(text)
        return props

    def _java(self, libs: Path, main: str, *args: str) -> list[str]:
        if main == "kafka.tools.StorageTool" and args[:1] == ("format",):
            args = (*args, "--add-scram", f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]")
        return super()._java(libs, main, *args)


@pytest.fixture
def sasl_ssl_broker(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to make the test certificates")
    tls = tmp_path / "tls"
    tls.mkdir()
    ca, keystore = make_tls(tls)
    broker = SaslSslKafka(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    broker.sasl_port, broker.keystore = free_port(), keystore
    broker.start(timeout=180)
    try:
        yield broker, ca
    finally:
        broker.stop()


@pytest.mark.integration
def test_agent_pipeline_and_notifier_run_over_sasl_ssl(sasl_ssl_broker, tmp_path, topic_prefix, monkeypatch):
    broker, ca = sasl_ssl_broker
    monkeypatch.setenv("GPUWATCH_KAFKA_SECURITY", orjson.dumps({
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": USER,
        "ssl.ca.location": str(ca)}).decode())
    monkeypatch.setenv("GPUWATCH_KAFKA_SASL_PASSWORD", PASSWORD)
    stack = Stack(bootstrap=f"127.0.0.1:{broker.sasl_port}", home=tmp_path / "home", prefix=topic_prefix)
    try:
        stack.start_pipeline()
        notifier = stack.spawn("notify", "notify", "--webhook", "http://127.0.0.1:9/hook")
        notifier.wait_for_line("notify: ready")
        n = stack.simulate(1, 2, 5)["samples_published"]
        assert n > 0
        wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") == n, 90,
                 what=f"{n} samples stored over SASL_SSL")
    finally:
        stack.stop_all()
