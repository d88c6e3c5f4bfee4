"""gpuwatch's one translation of Kafka security settings, for the agent, the pipeline and the notifier.

Operators write librdkafka's names once (``security.protocol``,
``sasl.mechanism``, ``sasl.username``, ``ssl.ca.location``, ...) plus the SASL
password as a secret. This package

* assembles them into one librdkafka configuration (:func:`client_config`),
  which confluent-kafka takes as it is (the agent, topic creation);
* checks them once, the same way for every process (:func:`check`);
* translates them for aiokafka (:func:`aiokafka_kwargs`), which the notifier
  uses directly and the pipeline uses through Faust, TLS context included.

It is a package of its own, importing only the standard library, because the
node agent ships without ``pipelines`` and ``schemas`` is the data contract,
not client configuration.

>>> conf = client_config("b:9093", {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
...                                 "sasl.username": "gw"}, "s3cret")
>>> kw = aiokafka_kwargs(conf)
>>> kw["security_protocol"], kw["sasl_mechanism"], kw["sasl_plain_username"], type(kw["ssl_context"]).__name__
('SASL_SSL', 'SCRAM-SHA-512', 'gw', 'SSLContext')
>>> aiokafka_kwargs({"bootstrap.servers": "b:9092"})
{}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    import ssl

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

__all__ = ["KafkaSecurityError", "aiokafka_kwargs", "check", "client_config", "ssl_context"]


class KafkaSecurityError(ValueError):
    """Security settings that cannot be used; the text says which and why."""


def client_config(bootstrap: str, security: Mapping[str, Any], sasl_password: str | None) -> dict[str, Any]:
    """librdkafka settings: the bootstrap servers, the security settings as given, the password apart."""
    conf: dict[str, Any] = {**security}
    if bootstrap:
        conf["bootstrap.servers"] = bootstrap
    if sasl_password is not None:
        conf["sasl.password"] = sasl_password
    return conf


def check(conf: Mapping[str, Any]) -> str:
    """The security protocol of librdkafka ``conf``, once it is known to be usable.

    >>> check({"security.protocol": "sasl_ssl", "sasl.mechanism": "GSSAPI", "sasl.username": "u",
    ...        "sasl.password": "p"})
    Traceback (most recent call last):
    ...
    kafka_security.KafkaSecurityError: sasl.mechanism 'GSSAPI': gpuwatch supports PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    """
    protocol = str(conf.get("security.protocol", "PLAINTEXT")).upper()
    if protocol not in PROTOCOLS:
        raise KafkaSecurityError(f"security.protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if protocol.startswith("SASL"):
        mechanism = str(conf.get("sasl.mechanism") or conf.get("sasl.mechanisms") or "PLAIN").upper()
        if mechanism not in MECHANISMS:
            raise KafkaSecurityError(f"sasl.mechanism {mechanism!r}: gpuwatch supports {', '.join(MECHANISMS)}")
        if not conf.get("sasl.username") or not conf.get("sasl.password"):
            raise KafkaSecurityError("SASL needs sasl.username in the security settings and the SASL password "
                                     "(GPUWATCH_KAFKA_SASL_PASSWORD, or kafka.sasl_password for the agent)")
    return protocol


def ssl_context(conf: Mapping[str, Any]) -> ssl.SSLContext:
    """A TLS context from librdkafka's ``ssl.*`` settings (CA, client certificate, verification)."""
    import ssl  # here, not at the top: the node agent (librdkafka does its TLS) never loads Python's ssl

    try:
        ctx = ssl.create_default_context(cafile=conf.get("ssl.ca.location"))
        if conf.get("ssl.certificate.location"):
            ctx.load_cert_chain(conf["ssl.certificate.location"], conf.get("ssl.key.location"),
                                conf.get("ssl.key.password"))
    except (OSError, ssl.SSLError) as e:
        raise KafkaSecurityError(f"cannot load the TLS files named in ssl.*: {e}") from None
    if str(conf.get("enable.ssl.certificate.verification", "true")).lower() == "false":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif str(conf.get("ssl.endpoint.identification.algorithm", "https")).lower() == "none":
        ctx.check_hostname = False
    return ctx


def aiokafka_kwargs(conf: Mapping[str, Any]) -> dict[str, Any]:
    """aiokafka's keyword arguments for librdkafka ``conf`` (empty for plaintext)."""
    protocol = check(conf)
    if protocol == "PLAINTEXT":
        return {}
    out: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        out["ssl_context"] = ssl_context(conf)
    if protocol.startswith("SASL"):
        out["sasl_mechanism"] = str(conf.get("sasl.mechanism") or conf.get("sasl.mechanisms") or "PLAIN").upper()
        out["sasl_plain_username"] = conf["sasl.username"]
        out["sasl_plain_password"] = conf["sasl.password"]
    return out
