"""A small client for the worker's HTTP API, used by ``gpuwatch silence`` and ``gpuwatch ack``.

It finds the running worker the way ``gpuwatch query`` finds the pipeline: an
explicit URL, else ``$GPUWATCH_NOTIFY_API_URL``, else the address the worker
wrote to ``$GPUWATCH_HOME/notify/api.json``, else the default listen address.
"""

from __future__ import annotations

import os
import re

import httpx
import orjson


class ApiError(RuntimeError):
    """The worker refused the request or could not be reached; the text says which."""


def discover_url(explicit: str | None = None) -> str:
    if explicit:
        return explicit.rstrip("/")
    if os.environ.get("GPUWATCH_NOTIFY_API_URL"):
        return os.environ["GPUWATCH_NOTIFY_API_URL"].rstrip("/")
    from pipelines.notify.settings import NotifySettings

    settings = NotifySettings()
    try:
        rec = orjson.loads((settings.state_dir() / "api.json").read_bytes())
        os.kill(int(rec["pid"]), 0)
        return str(rec["url"]).rstrip("/")
    except (OSError, ValueError, KeyError, TypeError):
        host, port = settings.listen_host_port()
        return f"http://{host}:{port}"


_ID = re.compile(r"[0-9A-Za-z_-]{1,128}")


def _id(kind: str, value: str) -> str:
    """An ID as one URL path segment. Anything else is refused: ``../acks/<fp>`` as a silence ID expired
    that ack (httpx resolves dot segments), and an empty one named the collection.

    >>> _id("silence", "04adf95de75f4130")
    '04adf95de75f4130'
    >>> _id("silence", "../acks/cb4e6e14b0f846d7")
    Traceback (most recent call last):
    ...
    pipelines.notify.api_client.ApiError: '../acks/cb4e6e14b0f846d7' is not a silence ID (letters, digits, - and _)
    """
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ApiError(f"{value!r} is not a {kind} ID (letters, digits, - and _)")
    return value


class NotifyApi:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = discover_url(url)
        token = token or os.environ.get("GPUWATCH_NOTIFY_API_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=self.url, timeout=timeout, headers=headers, trust_env=False)

    def _call(self, method: str, path: str, **kw) -> dict:
        try:
            r = self._client.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise ApiError(f"cannot reach the notify worker at {self.url} ({type(e).__name__}); "
                           "is `gpuwatch notify` running? (--url or GPUWATCH_NOTIFY_API_URL to point elsewhere)") from None
        try:
            body = r.json()
        except ValueError:
            body = {"error": r.text[:200]}
        if r.status_code >= 400:
            raise ApiError(body.get("error") or f"HTTP {r.status_code}")
        return body

    def alerts(self) -> list[dict]:
        return self._call("GET", "/api/v1/alerts")["alerts"]

    def silences(self, active_only: bool = False) -> list[dict]:
        return self._call("GET", "/api/v1/silences", params={"active": "1"} if active_only else None)["silences"]

    def create_silence(self, matchers: list[str], created_by: str, comment: str, duration: str | None = None,
                       ends_at: float | None = None, starts_at: float | None = None) -> dict:
        body = {"matchers": matchers, "created_by": created_by, "comment": comment, "duration": duration,
                "ends_at": ends_at, "starts_at": starts_at}
        return self._call("POST", "/api/v1/silences", json={k: v for k, v in body.items() if v is not None})["silence"]

    def expire_silence(self, silence_id: str) -> dict:
        return self._call("DELETE", f"/api/v1/silences/{_id('silence', silence_id)}")["silence"]

    def acks(self) -> list[dict]:
        return self._call("GET", "/api/v1/acks")["acks"]

    def ack(self, fingerprint: str, owner: str, comment: str = "") -> dict:
        return self._call("POST", "/api/v1/acks", json={"fingerprint": fingerprint, "owner": owner,
                                                        "comment": comment})["ack"]

    def unack(self, fingerprint: str, owner: str = "") -> dict:
        return self._call("DELETE", f"/api/v1/acks/{_id('incident', fingerprint)}",
                          params={"owner": owner} if owner else None)["ack"]
