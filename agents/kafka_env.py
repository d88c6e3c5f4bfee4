"""Where the agent's Kafka is, read from the same ``GPUWATCH_KAFKA_*`` variables the pipeline reads.

The agent keeps its own small copy rather than importing the pipeline's
settings, so a GPU node installs neither Faust nor ClickHouse. Only the three
variables the agent needs are read, from the environment and then from a
``.env`` file in the working directory (the environment wins), as the
pipeline's settings read them; the agent's YAML (``kafka.bootstrap``,
``kafka.security``, ``kafka.sasl_password``) overrides them. Plain Python
rather than pydantic-settings: see :mod:`agents.environment`.

>>> KafkaEnv(kafka_bootstrap="b1:9092", kafka_security={"security.protocol": "SSL"}).client_config()
{'bootstrap.servers': 'b1:9092', 'security.protocol': 'SSL'}
>>> KafkaEnv(environ={"GPUWATCH_KAFKA_SECURITY": "SSL"})
Traceback (most recent call last):
...
agents.config.ConfigError: GPUWATCH_KAFKA_SECURITY must be a JSON object of librdkafka settings, e.g. '{"security.protocol": "SASL_SSL"}'
"""

from __future__ import annotations

import os
from typing import Mapping

import orjson

from agents.config import ConfigError
from agents.environment import dotenv

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


class KafkaEnv:
    """``GPUWATCH_KAFKA_BOOTSTRAP``, ``GPUWATCH_KAFKA_SECURITY`` (JSON) and ``GPUWATCH_KAFKA_SASL_PASSWORD``."""

    def __init__(self, *, kafka_bootstrap: str | None = None, kafka_security: dict[str, str] | None = None,
                 kafka_sasl_password: str | None = None, environ: Mapping[str, str] | None = None) -> None:
        if environ is None:
            environ = {**dotenv(".env"), **os.environ}
        env = {k.upper(): v for k, v in environ.items() if k.upper().startswith("GPUWATCH_KAFKA_")}
        self.kafka_bootstrap = kafka_bootstrap or env.get("GPUWATCH_KAFKA_BOOTSTRAP") or DEFAULT_BOOTSTRAP
        self.kafka_security = dict(kafka_security) if kafka_security is not None else _security(env)
        self._password = kafka_sasl_password if kafka_sasl_password is not None else \
            env.get("GPUWATCH_KAFKA_SASL_PASSWORD")

    def client_config(self) -> dict[str, str]:
        conf = {"bootstrap.servers": self.kafka_bootstrap, **self.kafka_security}
        if self._password is not None:
            conf["sasl.password"] = self._password
        return conf

    def __repr__(self) -> str:  # never the password
        secret = "'**********'" if self._password is not None else "None"
        return (f"KafkaEnv(kafka_bootstrap={self.kafka_bootstrap!r}, kafka_security={self.kafka_security!r}, "
                f"kafka_sasl_password={secret})")


def _security(env: Mapping[str, str]) -> dict[str, str]:
    text = env.get("GPUWATCH_KAFKA_SECURITY", "").strip()
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ConfigError("GPUWATCH_KAFKA_SECURITY must be a JSON object of librdkafka settings, "
                          "e.g. '{\"security.protocol\": \"SASL_SSL\"}'")
    return {str(k): str(v) for k, v in value.items()}
