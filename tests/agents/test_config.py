"""Agent configuration: YAML plus environment, validated with errors a person can act on."""

from __future__ import annotations

import pytest

from agents.config import ConfigError, load_config


def _write(tmp_path, text: str):
    p = tmp_path / "agent.yaml"
    p.write_text(text)
    return p


def test_yaml_is_read_and_environment_wins(tmp_path, monkeypatch):
    p = _write(tmp_path, """
node: gpu-node-7
interval_s: 2
labels: {cluster: prod-a}
kafka:
  bootstrap: 127.0.0.1:19092
  security: {security.protocol: SASL_SSL, sasl.mechanism: SCRAM-SHA-512, sasl.username: agent}
collectors:
  logfiles: {enabled: true, paths: [/var/log/train/*.log]}
  nvml: {skip: [retired_pages]}
""")
    monkeypatch.setenv("GPUWATCH_AGENT_INTERVAL_S", "5")
    monkeypatch.setenv("GPUWATCH_AGENT_COLLECTORS__HOST__ENABLED", "false")
    monkeypatch.setenv("GPUWATCH_AGENT_KAFKA__SASL_PASSWORD", "s3cret")
    cfg = load_config(p)
    assert cfg.node == "gpu-node-7" and cfg.interval_s == 5 and cfg.labels == {"cluster": "prod-a"}
    assert cfg.collectors.host.enabled is False and cfg.collectors.logfiles.paths == ["/var/log/train/*.log"]
    assert cfg.collectors.nvml.skip == ["retired_pages"] and cfg.collectors.nvml.enabled
    conf = cfg.kafka.client_config()
    assert conf == {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "agent",
                    "bootstrap.servers": "127.0.0.1:19092", "sasl.password": "s3cret"}
    assert "s3cret" not in repr(cfg)


def test_every_problem_is_listed_with_where_it_is(tmp_path):
    p = _write(tmp_path, """
interval_s: 0
collectors:
  nvml: {procesess: false}
  logfiles: {paths: [relative/train.log]}
  jobsdk: {listen: "9125"}
  prometheus: {targets: [{url: "localhost:9400"}]}
""")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    text = str(e.value)
    assert str(p) in text
    assert "interval_s: Input should be greater than or equal to 0.1 (got 0)" in text
    assert "collectors.nvml.procesess: unknown setting (check the spelling" in text
    assert "collectors.logfiles.paths" in text and "must be absolute" in text
    assert "collectors.jobsdk.listen" in text and "host:port" in text
    assert "collectors.prometheus.targets.0.url" in text and "http://" in text
    assert text.count("(got 'localhost:9400')") == 1 and "Value error, " not in text  # said once


def test_password_in_the_security_map_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="kafka.sasl_password"):
        load_config(_write(tmp_path, "kafka: {security: {sasl.password: hunter2}}\n"))


def test_unreadable_and_malformed_files_say_so(tmp_path):
    with pytest.raises(ConfigError, match="cannot read agent config"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "node: [unclosed\n"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"))
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"\xff\xfenode: caf\xe9\n")  # crashed with UnicodeDecodeError
    with pytest.raises(ConfigError, match=r"latin1.yaml is not UTF-8 text \(byte 0xff at offset 0\)"):
        load_config(latin1)


def test_the_example_config_in_infra_is_valid():
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[2] / "infra" / "agent" / "agent.yaml")
    assert cfg.collectors.nvml.enabled and cfg.kafka.topics.metrics == "gpuwatch.metrics.v1"
    # a map given in YAML replaces the defaults: the shipped one must schedule every costly group itself
    # (without mig_mode it read MIG mode, 468 us on an H200, every scrape)
    from agents.collectors.nvml_fields import DEFAULT_GROUP_INTERVALS_S

    assert set(DEFAULT_GROUP_INTERVALS_S) <= set(cfg.collectors.nvml.group_intervals_s)


def test_environment_sets_lists_maps_and_nested_keys_and_ignores_other_variables(tmp_path, monkeypatch):
    p = _write(tmp_path, "node: n1\nlabels: {cluster: a}\ncollectors: {logfiles: {enabled: true}}\n")
    monkeypatch.setenv("GPUWATCH_AGENT_COLLECTORS__LOGFILES__PATHS", '["/var/log/a.log", "/var/log/b.log"]')
    monkeypatch.setenv("gpuwatch_agent_labels__rack", "r7")  # names are case-insensitive
    monkeypatch.setenv("GPUWATCH_AGENT_CONFIG", str(p))  # the CLI's own variable, not a setting
    monkeypatch.setenv("GPUWATCH_AGENT_EXPORTER", '{"enabled": true, "listen": "127.0.0.1:9400"}')
    cfg = load_config(p)
    assert cfg.collectors.logfiles.enabled and cfg.collectors.logfiles.paths == ["/var/log/a.log", "/var/log/b.log"]
    assert cfg.labels == {"cluster": "a", "rack": "r7"}
    assert cfg.exporter.enabled and cfg.exporter.address == ("127.0.0.1", 9400)


def test_a_misspelt_nested_environment_setting_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUWATCH_AGENT_COLLECTORS__HOST__ENABELD", "false")
    with pytest.raises(ConfigError, match="collectors.host.enabeld: unknown setting"):
        load_config(None)


def test_kafka_environment_and_dotenv(tmp_path, monkeypatch):
    from agents.kafka_env import KafkaEnv

    (tmp_path / ".env").write_text('GPUWATCH_KAFKA_BOOTSTRAP=from-file:9092\n'
                                   'GPUWATCH_KAFKA_SECURITY=\'{"security.protocol": "SASL_SSL"}\'\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GPUWATCH_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("GPUWATCH_KAFKA_SECURITY", raising=False)
    monkeypatch.setenv("GPUWATCH_KAFKA_SASL_PASSWORD", "s3cret")
    env = KafkaEnv()
    assert env.client_config() == {"bootstrap.servers": "from-file:9092", "security.protocol": "SASL_SSL",
                                   "sasl.password": "s3cret"}
    assert "s3cret" not in repr(env)
    monkeypatch.setenv("GPUWATCH_KAFKA_BOOTSTRAP", "from-env:9092")  # the environment wins over .env
    assert KafkaEnv().client_config()["bootstrap.servers"] == "from-env:9092"
