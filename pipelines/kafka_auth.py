"""One set of Kafka security settings for both client libraries.

Operators write librdkafka's names once (``GPUWATCH_KAFKA_SECURITY`` JSON plus
``GPUWATCH_KAFKA_SASL_PASSWORD``); confluent-kafka takes them as they are, and
this module translates them for Faust (aiokafka), which the pipeline uses.

>>> faust_credentials({"bootstrap.servers": "b:9092"}) is None
True
>>> c = faust_credentials({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
...                        "sasl.username": "gw", "sasl.password": "s3cret"})
>>> (type(c).__name__, c.username, c.mechanism.value)
('SASLCredentials', 'gw', 'SCRAM-SHA-512')
"""

from __future__ import annotations

import ssl
from typing import Any

_SUPPORTED = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}


class KafkaSecurityError(ValueError):
    """Security settings that cannot be used; the text says which and why."""


def _ssl_context(conf: dict[str, Any]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=conf.get("ssl.ca.location"))
    if conf.get("ssl.certificate.location"):
        ctx.load_cert_chain(conf["ssl.certificate.location"], conf.get("ssl.key.location"),
                            conf.get("ssl.key.password"))
    if str(conf.get("enable.ssl.certificate.verification", "true")).lower() == "false":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def faust_credentials(conf: dict[str, Any]) -> Any:
    """Faust ``broker_credentials`` for librdkafka-style ``conf``, or None for plaintext."""
    import faust

    protocol = str(conf.get("security.protocol", "PLAINTEXT")).upper()
    if protocol not in _SUPPORTED:
        raise KafkaSecurityError(f"security.protocol {protocol!r} is not one of {sorted(_SUPPORTED)}")
    if protocol == "PLAINTEXT":
        return None
    context = _ssl_context(conf) if protocol.endswith("SSL") else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    mechanism = str(conf.get("sasl.mechanism", "PLAIN")).upper()
    if mechanism not in {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}:
        raise KafkaSecurityError(f"sasl.mechanism {mechanism!r}: the pipeline supports PLAIN and SCRAM-SHA-256/512")
    if not conf.get("sasl.username") or not conf.get("sasl.password"):
        raise KafkaSecurityError("SASL needs sasl.username in GPUWATCH_KAFKA_SECURITY and GPUWATCH_KAFKA_SASL_PASSWORD")
    return faust.SASLCredentials(username=conf["sasl.username"], password=conf["sasl.password"],
                                 ssl_context=context, mechanism=mechanism)
