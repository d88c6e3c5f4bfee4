"""Email receiver settings: SMTP with STARTTLS and authentication.

>>> EmailConfig(to=["oncall@example.com"], sender="gpuwatch@example.com", smarthost="smtp.example.com:587").port
587
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from pipelines.notify.receivers.base import ReceiverConfig


class EmailConfig(ReceiverConfig):
    to: list[str] = Field(min_length=1)
    #: The From address (``from`` in Alertmanager's YAML is accepted too).
    sender: str = Field(alias="from")
    #: SMTP server as host:port.
    smarthost: str
    hello: str = "localhost"
    auth_username: str = ""
    auth_password: SecretStr | None = None
    #: Refuse to send unless the server offers STARTTLS (credentials never go in clear).
    require_tls: bool = True
    #: CA bundle to verify the server with (default: the system's); for private CAs and tests.
    tls_ca_file: str = ""
    tls_insecure_skip_verify: bool = False
    subject_prefix: str = "[gpuwatch] "
    rate_limit: float = 2.0
    rate_burst: int = 10

    model_config = ReceiverConfig.model_config | {"populate_by_name": True}

    @field_validator("smarthost")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("smarthost must be host:port, e.g. smtp.example.com:587")
        return v

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [x.strip() for x in v.split(",")] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _auth_pair(self) -> "EmailConfig":
        if bool(self.auth_username) != (self.auth_password is not None):
            raise ValueError("give both auth_username and auth_password, or neither")
        return self

    @property
    def host(self) -> str:
        return self.smarthost.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.smarthost.rpartition(":")[2])
