"""The worker's HTTP API: alerts, silences and acks for the CLI and for people's tools.

    GET    /api/v1/alerts                 current alerts with silenced/inhibited/acked state
    GET    /api/v1/silences               all silences (?active=1 for pending and active only)
    POST   /api/v1/silences               {"matchers": ["node=\"n1\""], "ends_at" | "duration": "2h",
                                           "created_by": "alice", "comment": "maintenance"}
    DELETE /api/v1/silences/{id}          expire a silence now
    GET    /api/v1/acks                   current acknowledgements
    POST   /api/v1/acks                   {"fingerprint": "...", "owner": "alice", "comment": "..."}
    DELETE /api/v1/acks/{fingerprint}     unacknowledge
    GET    /metrics, /-/healthy, /-/ready

Changes require ``Authorization: Bearer <GPUWATCH_NOTIFY_API_TOKEN>`` when a
token is configured; by default the API listens on loopback only.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

import orjson
from aiohttp import web

from pipelines.notify.acks import AckError
from pipelines.notify.durations import parse_duration
from pipelines.notify.matchers import Matcher, MatcherError, parse_matchers
from pipelines.notify.service import NotifyService
from pipelines.notify.silences import SilenceError

SERVICE = web.AppKey("service", NotifyService)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json(req: web.Request) -> Any:
    """The request body as JSON: orjson refuses nesting past 1,024 levels with a ValueError (a 400), where
    the json module's RecursionError was a 500."""
    return orjson.loads(await req.read())


def _text_field(body: dict, name: str, default: str = "") -> str:
    v = body.get(name, default)
    if not isinstance(v, str):
        raise ValueError(f"{name} must be a string, not {type(v).__name__}")
    return v


def _parse_silence(body: Any) -> dict:
    if not isinstance(body, dict):
        raise SilenceError("send a JSON object with matchers, ends_at or duration, created_by and comment")
    raw = body.get("matchers")
    if isinstance(raw, str):
        matchers = parse_matchers(raw)
    elif isinstance(raw, list):
        matchers = [Matcher.from_dict(m) if isinstance(m, dict) else Matcher.parse(str(m)) for m in raw]
    else:
        raise SilenceError("matchers must be a list like [\"alertname=\\\"GpuHot\\\"\"]")
    now = time.time()
    starts_at = float(body["starts_at"]) if body.get("starts_at") is not None else None
    if body.get("ends_at") is not None:
        ends_at = float(body["ends_at"])
    elif body.get("duration") is not None:
        ends_at = (starts_at or now) + parse_duration(body["duration"])
    else:
        raise SilenceError("give ends_at (epoch seconds) or duration (e.g. \"2h\")")
    return {"matchers": matchers, "starts_at": starts_at, "ends_at": ends_at,
            "created_by": _text_field(body, "created_by"), "comment": _text_field(body, "comment")}


def build_app(service: NotifyService, token: str | None = None, ready: dict | None = None) -> web.Application:
    app = web.Application(middlewares=[_json_errors, _auth_middleware(token)], client_max_size=1 << 20)
    app[SERVICE] = service
    ready = ready if ready is not None else {"ready": True}

    async def healthy(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def is_ready(_: web.Request) -> web.Response:
        return web.Response(text="ready\n") if ready.get("ready") else web.Response(status=503, text="starting\n")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=service.metrics.exposition(), content_type="text/plain")

    async def alerts(_: web.Request) -> web.Response:
        return web.json_response({"alerts": service.alerts_view()})

    async def list_silences(req: web.Request) -> web.Response:
        only_live = req.query.get("active", "") in ("1", "true", "yes")
        return web.json_response({"silences": [s.as_dict() for s in service.silences.list(not only_live)]})

    async def create_silence(req: web.Request) -> web.Response:
        try:
            spec = _parse_silence(await _json(req))
            s = service.create_silence(**spec)
        except (SilenceError, MatcherError, ValueError, KeyError, TypeError) as e:
            return _error(400, str(e))
        return web.json_response({"silence": s.as_dict()}, status=201)

    async def expire_silence(req: web.Request) -> web.Response:
        try:
            s = service.expire_silence(req.match_info["id"])
        except SilenceError as e:
            return _error(404 if "no silence" in str(e) else 409, str(e))
        return web.json_response({"silence": s.as_dict()})

    async def list_acks(_: web.Request) -> web.Response:
        return web.json_response({"acks": [a.as_dict() for a in service.acks.list()]})

    async def ack(req: web.Request) -> web.Response:
        try:
            body = await _json(req)
            if not isinstance(body, dict) or "fingerprint" not in body:
                raise ValueError('send a JSON object {"fingerprint": "...", "owner": "...", "comment": "..."}')
            a = service.ack(_text_field(body, "fingerprint"), _text_field(body, "owner"), _text_field(body, "comment"))
        except (KeyError, TypeError, ValueError) as e:
            return _error(404 if "no firing alert" in str(e) else 400,
                          str(e) if isinstance(e, (AckError, ValueError)) else f"bad ack request: {e}")
        return web.json_response({"ack": a.as_dict()}, status=201)

    async def unack(req: web.Request) -> web.Response:
        try:
            a = service.unack(req.match_info["fingerprint"], req.query.get("owner", ""))
        except AckError as e:
            return _error(409 if "acknowledged by" in str(e) else 404, str(e))
        return web.json_response({"ack": a.as_dict()})

    app.add_routes([
        web.get("/-/healthy", healthy), web.get("/-/ready", is_ready), web.get("/metrics", metrics),
        web.get("/api/v1/alerts", alerts),
        web.get("/api/v1/silences", list_silences), web.post("/api/v1/silences", create_silence),
        web.delete("/api/v1/silences/{id}", expire_silence),
        web.get("/api/v1/acks", list_acks), web.post("/api/v1/acks", ack),
        web.delete("/api/v1/acks/{fingerprint}", unack),
    ])
    return app


@web.middleware
async def _json_errors(request: web.Request, handler):
    """aiohttp's own refusals (unknown path, wrong method, body too large) as JSON, like every other error."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return _error(e.status, e.reason if e.status != 413 else "the request body is larger than 1 MiB")


def _auth_middleware(token: str | None):
    @web.middleware
    async def auth(request: web.Request, handler):
        if token and request.method not in ("GET", "HEAD"):
            given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")  # not text: 401
            if not hmac.compare_digest(given, f"Bearer {token}".encode()):
                return _error(401, "this API needs 'Authorization: Bearer <GPUWATCH_NOTIFY_API_TOKEN>'")
        return await handler(request)
    return auth
