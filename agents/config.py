"""The node agent's configuration: one YAML file, overridable by environment variables.

Precedence, highest first: ``GPUWATCH_AGENT_*`` environment variables (nested
keys joined with ``__``, e.g. ``GPUWATCH_AGENT_COLLECTORS__LOGFILES__ENABLED=true``),
then the YAML file, then defaults. Every collector validates its own section;
unknown keys are refused so a typo is caught at start, not noticed weeks later.

>>> cfg = AgentConfig(node="gpu-node-7", collectors={"nvml": {"processes": False}})
>>> cfg.collectors.nvml.processes, cfg.collectors.host.enabled
(False, True)
>>> load_config_dict({"interval_s": -1})
Traceback (most recent call last):
...
agents.config.ConfigError: agent configuration is invalid:
  interval_s: Input should be greater than or equal to 0.1 (got -1)
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from agents.attribution import AttributionConfig
from agents.collectors.host import HostConfig
from agents.collectors.infiniband import InfinibandConfig
from agents.collectors.jobsdk import JobSdkConfig
from agents.collectors.logfiles import LogFilesConfig
from agents.collectors.nvml import NvmlConfig
from agents.collectors.prometheus_scrape import PrometheusConfig
from agents.collectors.xid import XidConfig
from agents.environment import deep_merge, overrides
from kafka_security import check, client_config
from schemas.topics import EVENTS, HEARTBEATS, LOGS, METRICS


class ConfigError(ValueError):
    """The configuration cannot be used. ``str()`` lists each problem on its own line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicsConfig(_Section):
    metrics: str = METRICS.name
    events: str = EVENTS.name
    heartbeats: str = HEARTBEATS.name
    logs: str = LOGS.name


class KafkaConfig(_Section):
    #: Comma-separated host:port list. Empty: $GPUWATCH_KAFKA_BOOTSTRAP, or --bootstrap.
    bootstrap: str = ""
    #: librdkafka settings passed through as given: TLS and SASL live here
    #: (security.protocol, ssl.ca.location, sasl.mechanism, sasl.username, ...).
    security: dict[str, str] = Field(default_factory=dict)
    #: SASL password; prefer the environment: GPUWATCH_AGENT_KAFKA__SASL_PASSWORD.
    sasl_password: SecretStr | None = None
    #: How long a message may wait for the broker before it is spooled instead.
    delivery_timeout_s: float = Field(default=15.0, ge=1, le=600)
    topics: TopicsConfig = Field(default_factory=TopicsConfig)

    @field_validator("security")
    @classmethod
    def _no_password_in_file(cls, v: dict[str, str]) -> dict[str, str]:
        if "sasl.password" in v:
            raise ValueError("put the SASL password in kafka.sasl_password (or GPUWATCH_AGENT_KAFKA__SASL_PASSWORD), "
                             "not in kafka.security, so it is never logged")
        check({**v, "sasl.password": "(checked apart)"})  # protocol and mechanism, as pipeline and notifier check them
        return v

    def client_config(self) -> dict[str, str]:
        """librdkafka settings, assembled and checked as every gpuwatch process does (kafka_security)."""
        password = self.sasl_password.get_secret_value() if self.sasl_password is not None else None
        return client_config(self.bootstrap, self.security, password)


class SpoolConfig(_Section):
    #: Where unsent messages wait for Kafka. Default: <state_dir>/spool.
    dir: Path | None = None
    #: The bound: past it the oldest messages are dropped (and counted).
    max_bytes: int = Field(default=512 * 2**20, ge=1024)
    segment_bytes: int = Field(default=4 * 2**20, ge=1024)
    #: Seconds between probes of an unreachable broker.
    retry_s: float = Field(default=5.0, gt=0, le=600)


class ExporterConfig(_Section):
    """The optional Prometheus endpoint (dcgm-exporter names and labels): agents.prometheus_exporter."""

    enabled: bool = False
    #: host:port to serve /metrics on (dcgm-exporter's port is 9400); --metrics-port overrides the port.
    listen: str = "0.0.0.0:9400"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be host:port, e.g. 0.0.0.0:9400")
        return v

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host or "0.0.0.0", int(port)


class CollectorsConfig(_Section):
    nvml: NvmlConfig = Field(default_factory=NvmlConfig)
    attribution: AttributionConfig = Field(default_factory=AttributionConfig)
    xid: XidConfig = Field(default_factory=XidConfig)
    host: HostConfig = Field(default_factory=HostConfig)
    infiniband: InfinibandConfig = Field(default_factory=InfinibandConfig)
    logfiles: LogFilesConfig = Field(default_factory=LogFilesConfig)
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig)
    jobsdk: JobSdkConfig = Field(default_factory=JobSdkConfig)


#: Environment variables named this plus a setting's path (``__`` between levels) override the file.
ENV_PREFIX = "GPUWATCH_AGENT_"


class AgentConfig(_Section):
    """Every setting of the agent. Built as given; :func:`load_config` lays the environment over the file."""

    #: This node's id on the wire (Kafka key). Default: the host name.
    node: str = Field(default_factory=socket.gethostname, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$")
    #: Seconds between scrapes.
    interval_s: float = Field(default=1.0, ge=0.1, le=3600)
    heartbeat_interval_s: float = Field(default=10.0, ge=1, le=3600)
    #: Offsets, cursors and the spool live here.
    state_dir: Path = Path("/var/lib/gpuwatch-agent")
    #: Labels put on every batch (cluster, rack, ...).
    labels: dict[str, str] = Field(default_factory=dict, max_length=16)
    #: Seconds allowed at shutdown to flush to Kafka before the rest is spooled.
    shutdown_timeout_s: float = Field(default=10.0, ge=0, le=300)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    exporter: ExporterConfig = Field(default_factory=ExporterConfig)
    collectors: CollectorsConfig = Field(default_factory=CollectorsConfig)

    @property
    def spool_dir(self) -> Path:
        return self.spool.dir or self.state_dir / "spool"


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"agent configuration{source} is invalid:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown setting (check the spelling; see infra/agent/agent.yaml for every key)"
        got = e.get("input")
        shown = got is not None and not isinstance(got, (dict, list)) and e["type"] != "extra_forbidden"
        hint = f" (got {got!r})" if shown and f"(got {got!r})" not in msg else ""  # said once, not twice
        lines.append(f"  {loc}: {msg}{hint}")
    return "\n".join(lines)


def load_config_dict(data: dict[str, Any], source: str = "",
                     environ: dict[str, str] | None = None) -> AgentConfig:
    """Validate ``data`` with ``GPUWATCH_AGENT_*`` variables (``environ``, default os.environ) winning."""
    try:
        return AgentConfig(**deep_merge(data, overrides(ENV_PREFIX, AgentConfig.model_fields, environ)))
    except ValidationError as e:
        raise ConfigError(_describe(e, source)) from None


def load_config(path: str | os.PathLike | None) -> AgentConfig:
    """Read the YAML file (if any), apply the environment, validate; ConfigError says what to fix."""
    data: dict[str, Any] = {}
    if path:
        p = Path(path)
        try:
            text = p.read_bytes().decode("utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read agent config {p}: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"agent config {p} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                              f"{e.start})") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"agent config {p} is not valid YAML: {e}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"agent config {p} must be a mapping of settings, not a {type(loaded).__name__}")
        data = loaded or {}
    return load_config_dict(data, f" ({path})" if path else "")
