"""Kafka security for Faust: the shared translation (:mod:`kafka_security`) as Faust's credentials.

The pipeline's consumers and producers are aiokafka clients under Faust, which
takes security as a ``broker_credentials`` object rather than keyword
arguments; this module only wraps what :func:`kafka_security.aiokafka_kwargs`
decided, so agent, pipeline and notifier read the settings one way.

>>> faust_credentials({"bootstrap.servers": "b:9092"}) is None
True
>>> c = faust_credentials({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
...                        "sasl.username": "gw", "sasl.password": "s3cret"})
>>> (type(c).__name__, c.username, c.mechanism.value)
('SASLCredentials', 'gw', 'SCRAM-SHA-512')
"""

from __future__ import annotations

from typing import Any

from kafka_security import KafkaSecurityError, aiokafka_kwargs

__all__ = ["KafkaSecurityError", "faust_credentials"]


def faust_credentials(conf: dict[str, Any]) -> Any:
    """Faust ``broker_credentials`` for librdkafka-style ``conf``, or None for plaintext."""
    import faust

    kw = aiokafka_kwargs(conf)
    if not kw:
        return None
    if kw["security_protocol"] == "SSL":
        return faust.SSLCredentials(kw["ssl_context"])
    return faust.SASLCredentials(username=kw["sasl_plain_username"], password=kw["sasl_plain_password"],
                                 ssl_context=kw.get("ssl_context"), mechanism=kw["sasl_mechanism"])
