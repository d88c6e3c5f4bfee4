"""Where the agent's Kafka is, read from the same ``GPUWATCH_KAFKA_*`` variables the pipeline reads.

The agent keeps its own small copy rather than importing the pipeline's
settings, so a GPU node installs neither Faust nor ClickHouse. Only the three
variables the agent needs are read; the agent's YAML (``kafka.bootstrap``,
``kafka.security``, ``kafka.sasl_password``) overrides them.

>>> KafkaEnv(kafka_bootstrap="b1:9092", kafka_security={"security.protocol": "SSL"}).client_config()
{'bootstrap.servers': 'b1:9092', 'security.protocol': 'SSL'}
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaEnv(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GPUWATCH_", env_file=".env", extra="ignore", frozen=True)

    kafka_bootstrap: str = "127.0.0.1:9092"
    #: librdkafka settings as JSON, e.g. '{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512"}'.
    kafka_security: dict[str, str] = Field(default_factory=dict)
    kafka_sasl_password: SecretStr | None = None

    def client_config(self) -> dict[str, str]:
        conf = {"bootstrap.servers": self.kafka_bootstrap, **self.kafka_security}
        if self.kafka_sasl_password is not None:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        return conf
