"""Settings shared by every gpuwatch process: where Kafka and ClickHouse are.

One frozen object per process, read from ``GPUWATCH_*`` environment variables
(and a ``.env`` file if present). Component settings extend it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GPUWATCH_", env_file=".env", extra="ignore", frozen=True)

    #: Working directory for local state: chDB data, Kafka data, spools, notification log.
    home: Path = Field(default=Path("var"))
    kafka_bootstrap: str = "127.0.0.1:9092"
    #: Extra librdkafka settings as JSON, e.g. '{"security.protocol": "SASL_SSL", ...}'.
    kafka_security: dict[str, str] = Field(default_factory=dict)
    kafka_sasl_password: SecretStr | None = None
    #: ``chdb:///path`` (embedded, default under ``home``) or ``http(s)://user:pass@host:port``.
    clickhouse_dsn: str = ""
    clickhouse_database: str = "gpuwatch"

    @field_validator("clickhouse_dsn")
    @classmethod
    def _dsn_scheme(cls, v: str) -> str:
        if v and not v.startswith(("chdb://", "http://", "https://")):
            raise ValueError("GPUWATCH_CLICKHOUSE_DSN must start with chdb://, http:// or https://")
        return v

    def dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{(self.home / 'clickhouse').absolute()}"

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka settings common to every producer and consumer."""
        conf = {"bootstrap.servers": self.kafka_bootstrap, **self.kafka_security}
        if self.kafka_sasl_password is not None:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        return conf
