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


def refusal(settings: Any, authorization: str | None) -> str | None:
    """Why a request may not use the console's API, or None when it may.

    >>> class S: web_host, query_token = "0.0.0.0", None
    >>> refusal(S(), None) is not None
    True
    >>> S.web_host = "127.0.0.1"; refusal(S(), None) is None
    True
    """
    return query_refusal(settings, authorization)


def forbidden_reason(request: Any) -> str | None:
    return refusal(_settings(), request.headers.get("Authorization"))
