"""Who may use the console's API: the same rule as ``POST /query``.

With ``GPUWATCH_QUERY_TOKEN`` set, a request needs ``Authorization: Bearer
<token>``; without one the console answers only while the web server listens
on loopback. The page sends the token it was given (``/console/#token=...``)
on every call, to ``/query`` and here alike.

The rule itself belongs to the query path (``pipelines.web.query_refusal``);
this module applies it, with the same rule written out for a tree that does
not have it yet.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _settings():
    from pipelines.settings import PipelineSettings

    return PipelineSettings()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(settings: Any, authorization: str | None) -> str | None:
    """Why a request may not use the console's API, or None when it may.

    >>> class S: web_host, query_token = "0.0.0.0", None
    >>> refusal(S(), None) is not None
    True
    >>> S.web_host = "127.0.0.1"; refusal(S(), None) is None
    True
    """
    try:
        from pipelines.web import query_refusal  # the query path's own rule, where it exists
    except ImportError:
        query_refusal = None
    if query_refusal is not None:
        return query_refusal(settings, authorization)
    secret = getattr(settings, "query_token", None)
    token = secret.get_secret_value() if secret is not None else ""
    if token:
        given = (authorization or "").removeprefix("Bearer ").strip()
        return None if hmac.compare_digest(given.encode(), token.encode()) else \
            "the console needs 'Authorization: Bearer <GPUWATCH_QUERY_TOKEN>' (open /console/#token=...)"
    if not _is_loopback(settings.web_host):
        return f"the console is off: the web server listens on {settings.web_host}; set GPUWATCH_QUERY_TOKEN"
    return None


def forbidden_reason(request: Any) -> str | None:
    return refusal(_settings(), request.headers.get("Authorization"))
