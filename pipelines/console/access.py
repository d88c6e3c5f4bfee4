"""Who may use the console's API: the same rule as ``POST /query``.

With ``GPUWATCH_QUERY_TOKEN`` set, a request needs ``Authorization: Bearer
<token>``; without one the console answers only while the web server listens
on loopback. The page sends the token it was given (``/console/#token=...``)
on every call, to ``/query`` and here alike. The rule itself is the query
path's (:func:`pipelines.web.query_refusal`); this module only applies it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pipelines.web import query_refusal


@lru_cache(maxsize=1)
def _settings():
    from pipelines.settings import PipelineSettings

    return PipelineSettings()


def refusal(settings: Any, authorization: str | None, host_header: str | None = None) -> str | None:
    """Why a request may not use the console's API, or None when it may.

    >>> class S: web_host, query_token = "0.0.0.0", None
    >>> refusal(S(), None) is not None
    True
    >>> S.web_host = "127.0.0.1"; refusal(S(), None) is None
    True
    """
    return query_refusal(settings, authorization, host_header)


def forbidden_reason(request: Any) -> str | None:
    return refusal(_settings(), request.headers.get("Authorization"), request.headers.get("Host"))


def cross_site_reason(request: Any) -> str | None:
    """Why a state-changing request (an ack, a silence) may be another site's, or None. A page elsewhere can
    make the operator's browser POST text/plain to localhost without asking; it cannot send JSON without a
    preflight this server never grants, nor forge Origin."""
    if request.headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
        return "send the body as Content-Type: application/json"
    origin = request.headers.get("Origin")
    if origin is not None:
        from urllib.parse import urlsplit

        if urlsplit(origin).netloc != request.headers.get("Host", ""):
            return f"a request from {origin} is another site's; the console only accepts its own"
    return None
