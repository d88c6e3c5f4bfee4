"""The receiver plugin contract: a config that validates itself and a notifier that sends.

A notifier sends one :class:`Notification` (a group of alerts) once. It never
retries and never sleeps: on failure it raises :class:`NotifyError` saying
whether the failure is *recoverable* (timeouts, 5xx, 429), and the retry stage
decides what to do. Errors carry only redacted text (see :func:`redact_url`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines.notify.durations import parse_duration
from pipelines.notify.notification import Notification


__all__ = ["HttpNotifier", "Notification", "Notifier", "NotifyError", "ReceiverConfig", "redact_text", "redact_url"]


class NotifyError(Exception):
    """A delivery failed. ``recoverable`` says whether trying again may help."""

    def __init__(self, message: str, recoverable: bool) -> None:
        super().__init__(message)
        self.recoverable = recoverable


def redact_url(url: str) -> str:
    """Keep only scheme, host and port: webhook paths and queries are often the secret.

    >>> redact_url("https://user:pw@hooks.slack.com/services/T0/B0/XyZ?token=1")
    'https://hooks.slack.com/<redacted>'
    >>> redact_url("http://127.0.0.1:8080/")
    'http://127.0.0.1:8080/<redacted>'
    """
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^@/]*@)?([^/?#]*)", url)
    return f"{m.group(1)}{m.group(2)}/<redacted>" if m else "<redacted url>"


def redact_text(text: str, secrets: list[str]) -> str:
    """Replace every URL and every known secret in ``text``.

    >>> redact_text("POST https://x.io/hook?k=1 failed; key s3cr3t", ["s3cr3t"])
    'POST https://x.io/<redacted> failed; key <secret>'
    """
    text = re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+", lambda m: redact_url(m.group(0)), text)
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "<secret>")
    return text


class ReceiverConfig(BaseModel):
    """Settings every receiver has; each plugin extends it with its own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    send_resolved: bool = True
    #: Also send when an incident already told about changes (a condition joined it, its log evidence
    #: arrived): same fingerprint and start, so a receiver updates the page rather than paging again.
    send_updates: bool = False
    #: Most notifications per second this integration sends (a token bucket), and its burst.
    rate_limit: float = Field(default=20.0, gt=0)
    rate_burst: int = Field(default=20, ge=1)
    timeout: float = 10.0
    #: Most notifications this integration has on the wire at once (the rest queue).
    max_in_flight: int = Field(default=16, ge=1, le=1024)

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_duration(v)


class Notifier(ABC):
    """A receiver integration. Subclasses set ``kind`` and ``config_model``."""

    kind: ClassVar[str]
    config_model: ClassVar[type[ReceiverConfig]]

    def __init__(self, config: ReceiverConfig, receiver: str, index: int = 0) -> None:
        self.config = config
        self.receiver = receiver
        self.index = index

    @property
    def name(self) -> str:
        """Unique within the worker: the notification log's key for this integration."""
        return f"{self.receiver}/{self.kind}/{self.index}"

    def secrets(self) -> list[str]:
        """Strings that must never reach a log (tokens, passwords, secret URLs)."""
        return []

    @abstractmethod
    async def notify(self, n: Notification) -> None:
        """Send once; raise NotifyError(recoverable=...) on failure."""

    async def close(self) -> None:
        return None


class HttpNotifier(Notifier):
    """Base for receivers that POST JSON: one pooled client, uniform error classification."""

    def __init__(self, config: ReceiverConfig, receiver: str, index: int = 0) -> None:
        super().__init__(config, receiver, index)
        self._client = httpx.AsyncClient(timeout=config.timeout, follow_redirects=False, trust_env=False)

    async def post(self, url: str, body: bytes, headers: dict[str, str],
                   ok: tuple[int, ...] = (200, 201, 202, 204)) -> httpx.Response:
        try:
            resp = await self._client.post(url, content=body, headers={"Content-Type": "application/json",
                                                                      "User-Agent": "gpuwatch-notify/0.1",
                                                                      **headers})
        except httpx.TimeoutException:
            raise NotifyError(f"{self.kind}: timed out after {self.config.timeout:g}s posting to "
                              f"{redact_url(url)}", recoverable=True) from None
        except httpx.HTTPError as e:
            raise NotifyError(f"{self.kind}: cannot reach {redact_url(url)}: {type(e).__name__}: "
                              f"{redact_text(str(e), self.secrets())}", recoverable=True) from None
        if resp.status_code in ok or (200 <= resp.status_code < 300 and not ok):
            return resp
        detail = redact_text(resp.text[:200].strip(), self.secrets())
        recoverable = resp.status_code >= 500 or resp.status_code == 429
        raise NotifyError(f"{self.kind}: {redact_url(url)} answered {resp.status_code}"
                          + (f": {detail}" if detail else ""), recoverable=recoverable)

    async def close(self) -> None:
        await self._client.aclose()
