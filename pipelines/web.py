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
from concurrent.futures import ThreadPoolExecutor
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


def host_name(host_header: str | None) -> str:
    """The name in a ``Host`` header, without its port.

    >>> host_name("127.0.0.1:6066"), host_name("[::1]:6066"), host_name("localhost"), host_name(None)
    ('127.0.0.1', '::1', 'localhost', '')
    """
    h = (host_header or "").strip()
    if h.startswith("["):
        return h[1:].partition("]")[0]
    return h.rpartition(":")[0] if h.count(":") == 1 else h


def query_refusal(settings: Any, authorization: str | None, host_header: str | None = None) -> str | None:
    """Why a ``POST /query`` (or console API) request may not run, or None when it may.

    With a token: exactly ``Authorization: Bearer <token>``. Without one: only on a loopback server, and
    only for a request that names a loopback host, so a web page whose name was re-pointed at 127.0.0.1
    (DNS rebinding) cannot read the store through the operator's browser.
    """
    token = settings.query_token.get_secret_value() if settings.query_token is not None else ""
    if token:
        scheme, _, given = (authorization or "").partition(" ")
        try:
            ok = scheme == "Bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
        except UnicodeEncodeError:  # a header that is not text: refused, not a 500
            ok = False
        return None if ok else "this needs the header 'Authorization: Bearer <GPUWATCH_QUERY_TOKEN>'"
    if not is_loopback(settings.web_host):
        return (f"POST /query is off: the web server listens on {settings.web_host}, "
                "so set GPUWATCH_QUERY_TOKEN (clients send it as a Bearer token)")
    if host_header is not None and not is_loopback(host_name(host_header)):
        return (f"Host {host_name(host_header)!r} is not this machine's loopback name: without "
                "GPUWATCH_QUERY_TOKEN only requests to localhost or 127.0.0.1 are answered")
    return None


#: User queries running at once over HTTP (the sandbox's own limit), and running or waiting their turn:
#: past that a request is refused at once (429), so a flood queues nothing without bound.
QUERY_SLOTS, QUERY_BACKLOG = 2, 8


def install(app: faust.App, ctx: Any, store: Store) -> None:
    sandbox = QuerySandbox(ctx.settings.query_dsn(), store.database, QueryLimits.from_settings(ctx.settings),
                           max_concurrent=QUERY_SLOTS)
    # Queries get threads of their own: on the loop's default executor a burst of slow ones took every
    # thread the sink's inserts use, and stopped all writes while /healthz said ok.
    pool = ThreadPoolExecutor(max_workers=QUERY_SLOTS, thread_name_prefix="user-query")
    running = [0]

    @app.page("/query")
    class QueryView(View):
        async def post(self, request: Request) -> Response:
            refusal = query_refusal(ctx.settings, request.headers.get("Authorization"), request.headers.get("Host"))
            if refusal:
                return self.json({"error": refusal}, status=401)
            try:
                body = orjson.loads(await request.read())
                sql = body["sql"]
                if not isinstance(sql, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                return self.json({"error": 'send a JSON object {"sql": "..."}'}, status=400)
            if running[0] >= QUERY_BACKLOG:
                return self.json({"error": f"{running[0]} queries are running or waiting already; try again "
                                           "when one has finished"}, status=429)
            running[0] += 1
            try:
                res = await asyncio.get_running_loop().run_in_executor(pool, sandbox.run, sql)
            except ReadOnlyViolation as e:
                return self.json({"error": str(e)}, status=403)
            except StoreError as e:
                return self.json({"error": str(e)}, status=400)
            finally:
                running[0] -= 1
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
