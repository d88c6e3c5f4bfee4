"""The pipeline's HTTP endpoints (on Faust's web server).

* ``POST /query`` ``{"sql": "..."}``: read-only SQL on the store. While the
  pipeline owns a chDB path no other process may open it, so this is how
  ``gpuwatch query`` reaches the data then. Each query runs in a
  :class:`~pipelines.query_sandbox.QuerySandbox`, never on the writer's
  session. With ``GPUWATCH_QUERY_TOKEN`` set it needs
  ``Authorization: Bearer <token>``; without one it answers only when the web
  server listens on a loopback address.
* ``GET /metrics``: Prometheus metrics (received, dead-lettered, written...).
* ``GET /healthz``: 200 when the worker is doing its job, 503 with the reasons
  when it is not (inserts failing, sink over its bound, consumer lag over its
  limit; :mod:`pipelines.health`). Both read the same gauges. A readiness check.
* ``GET /livez``: 200 while the process serves requests. A liveness check: a
  store outage makes the worker unready, and restarting it would not help.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import hmac
import ipaddress
import uuid
from typing import Any

import faust
import orjson
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipelines import telemetry
from pipelines.query_sandbox import QueryLimits, QuerySandbox
from pipelines.store import ReadOnlyViolation, Store, StoreError, rows_json


def jsonable(v: Any) -> Any:
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    if isinstance(v, (decimal.Decimal, uuid.UUID, bytes, bytearray)):
        return str(v) if not isinstance(v, (bytes, bytearray)) else v.decode(errors="replace")
    return v


def _default(v: Any) -> Any:
    out = jsonable(v)
    if out is v:
        return str(v)
    return out


def is_loopback(host: str) -> bool:
    """
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0"), is_loopback("::1")
    (True, True, False, True)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def query_refusal(settings: Any, authorization: str | None) -> str | None:
    """Why a ``POST /query`` request may not run, or None when it may."""
    token = settings.query_token.get_secret_value() if settings.query_token is not None else ""
    if token:
        given = (authorization or "").removeprefix("Bearer ").strip()
        return None if hmac.compare_digest(given.encode(), token.encode()) else \
            "POST /query needs the header 'Authorization: Bearer <GPUWATCH_QUERY_TOKEN>'"
    if not is_loopback(settings.web_host):
        return (f"POST /query is off: the web server listens on {settings.web_host}, "
                "so set GPUWATCH_QUERY_TOKEN (clients send it as a Bearer token)")
    return None


def install(app: faust.App, ctx: Any, store: Store) -> None:
    sandbox = QuerySandbox(ctx.settings.query_dsn(), store.database, QueryLimits.from_settings(ctx.settings))

    @app.page("/query")
    class QueryView(View):
        async def post(self, request: Request) -> Response:
            refusal = query_refusal(ctx.settings, request.headers.get("Authorization"))
            if refusal:
                return self.json({"error": refusal}, status=401)
            try:
                body = orjson.loads(await request.read())
                sql = body["sql"]
                if not isinstance(sql, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                return self.json({"error": 'send a JSON object {"sql": "..."}'}, status=400)
            loop = asyncio.get_running_loop()
            try:
                res = await loop.run_in_executor(None, sandbox.run, sql)
            except ReadOnlyViolation as e:
                return self.json({"error": str(e)}, status=403)
            except StoreError as e:
                return self.json({"error": str(e)}, status=400)
            payload = {"columns": res.columns, "types": res.types, "rows": res.rows}
            return self.bytes(rows_json(payload, default=_default), content_type="application/json")

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        if ctx.health is not None:
            ctx.health()  # refresh the gauges /healthz judges by
        return web.bytes(generate_latest(telemetry.REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/livez")
    async def livez(web: View, request: Request) -> Response:
        return web.json({"status": "alive"})

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        health = ctx.health()
        return web.json({**health.as_json(), "sink": ctx.sink.snapshot(), "open_series": ctx.windows.open_series(),
                         "late_samples": ctx.windows.late_samples}, status=200 if health.ok else 503)

    from pipelines import console  # the operator's page at /console/, reading through /query above
    console.install(app)
