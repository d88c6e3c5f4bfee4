"""The console: one web page on the pipeline's web server, at ``/console/``.

Why the pipeline and not the notifier: the pipeline owns the store and serves
the read-only ``/query`` endpoint that ``gpuwatch query`` uses. The page reads
*only* through that endpoint (same path, same limits, same token off
loopback), so there is no second way into the data to secure. Acknowledging
and silencing are the notifier's job; the page asks for them here and this
module forwards them to the notifier's API, found the way ``gpuwatch ack``
finds it.

    GET  /console/                  the page (heat map, incidents, node view)
    GET  /console/static/NAME       its script, style and the vendored uPlot
    GET  /console/api/config        the SQL the page runs through /query, metric choices
    GET  /console/api/alerts        the notifier's alerts (who acked, what is silenced)
    POST /console/api/acks          {"fingerprint", "owner", "comment"}  -> notifier
    POST /console/api/silences      {"matchers", "duration", "created_by", "comment"} -> notifier
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from pipelines.console.access import cross_site_reason, forbidden_reason
from pipelines.console.queries import HEATMAP_METRICS, QUERIES

STATIC = Path(__file__).with_name("static")
UPLOT = "uplot-1.6.32"
#: What the page may fetch, by the name it uses: nothing else under the package is served.
ASSETS = {
    "console.js": (STATIC / "console.js", "application/javascript"),
    "console.css": (STATIC / "console.css", "text/css"),
    "uplot.js": (STATIC / "vendor" / UPLOT / "uPlot.iife.min.js", "application/javascript"),
    "uplot.css": (STATIC / "vendor" / UPLOT / "uPlot.min.css", "text/css"),
}


def _notify(call: str, *args: Any) -> dict | list:
    """Call the notifier's API (blocking; run in a thread)."""
    from pipelines.notify.api_client import NotifyApi

    api = NotifyApi(timeout=5)
    return getattr(api, call)(*args)


def install(app: Any) -> None:
    """Register the console's routes on the Faust app's web server."""
    from faust.web import Request, Response, View

    def json(view: View, body: Any, status: int = 200) -> Response:
        return view.bytes(orjson.dumps(body), content_type="application/json", status=status)

    def refused(view: View, request: Request) -> Response | None:
        reason = forbidden_reason(request)
        return json(view, {"error": reason}, status=401) if reason else None

    def refused_change(view: View, request: Request) -> Response | None:
        if (no := refused(view, request)) is not None:
            return no
        reason = cross_site_reason(request)
        return json(view, {"error": reason}, status=403) if reason else None

    async def notifier(view: View, call: str, *args: Any) -> Response:
        from pipelines.notify.api_client import ApiError

        try:
            result = await asyncio.get_running_loop().run_in_executor(None, _notify, call, *args)
        except ApiError as e:
            return json(view, {"error": str(e)}, status=502)
        return json(view, result)

    @app.page("/console/")
    class ConsolePage(View):
        async def get(self, request: Request) -> Response:
            return self.bytes((STATIC / "index.html").read_bytes(), content_type="text/html")

    @app.page("/console")
    class ConsoleRedirect(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(b"", status=308, headers={"Location": "/console/"})

    @app.page("/console/static/{name}")
    class ConsoleAsset(View):
        async def get(self, request: Request, name: str) -> Response:
            if name not in ASSETS:
                return self.bytes(b"not found", status=404, content_type="text/plain")
            path, kind = ASSETS[name]
            return self.bytes(path.read_bytes(), content_type=kind, headers={"Cache-Control": "no-cache"})

    @app.page("/console/api/config")
    class ConsoleConfig(View):
        async def get(self, request: Request) -> Response:
            return refused(self, request) or json(self, {"queries": QUERIES, "metrics": list(HEATMAP_METRICS)})

    @app.page("/console/api/alerts")
    class ConsoleAlerts(View):
        async def get(self, request: Request) -> Response:
            return refused(self, request) or await notifier(self, "alerts")

    @app.page("/console/api/acks")
    class ConsoleAck(View):
        async def post(self, request: Request) -> Response:
            if (no := refused_change(self, request)) is not None:
                return no
            try:
                body = orjson.loads(await request.read())
                args = (str(body["fingerprint"]), str(body["owner"]), str(body.get("comment", "")))
            except (ValueError, KeyError, TypeError):
                return json(self, {"error": 'send {"fingerprint": "...", "owner": "..."}'}, status=400)
            return await notifier(self, "ack", *args)

    @app.page("/console/api/silences")
    class ConsoleSilence(View):
        async def post(self, request: Request) -> Response:
            if (no := refused_change(self, request)) is not None:
                return no
            try:
                body = orjson.loads(await request.read())
                args = ([str(m) for m in body["matchers"]], str(body["created_by"]), str(body["comment"]),
                        str(body.get("duration", "1h")))
            except (ValueError, KeyError, TypeError):
                return json(self, {"error": "send matchers, created_by, comment and duration"}, status=400)
            return await notifier(self, "create_silence", *args)
