"""A real headless Chromium (Debian's package) driven over the DevTools protocol.

Just what the console's test needs: open a page, evaluate JavaScript in it,
wait for a condition, take a screenshot. It speaks CDP over aiohttp's
websocket client (already a dependency), so there is no WebDriver binary whose
version must match the browser's.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class Browser:
    def __init__(self, profile_dir: Path, width: int = 1400, height: int = 1000) -> None:
        self.profile_dir = profile_dir
        self.size = (width, height)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self.console_errors: list[str] = []

    async def __aenter__(self) -> "Browser":
        exe = chromium_path()
        if exe is None:
            raise RuntimeError("chromium is not installed (infra/console/install-chromium.sh)")
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--remote-debugging-port=0",
             "--remote-allow-origins=*", f"--user-data-dir={self.profile_dir}",
             f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        endpoint = None
        while time.monotonic() < deadline and endpoint is None:
            line = await asyncio.to_thread(self.proc.stderr.readline)
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            if "DevTools listening on " in line:
                endpoint = line.split("DevTools listening on ", 1)[1].strip()
        if endpoint is None:
            raise RuntimeError("chromium did not open its DevTools port")
        http = endpoint.replace("ws://", "http://").split("/devtools/")[0]
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"{http}/json/list") as r:
            pages = [t for t in await r.json() if t["type"] == "page"]
        self.ws = await self.session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=64 << 20)
        self._reader = asyncio.create_task(self._read())
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        return self

    async def __aexit__(self, *exc) -> None:
        self._reader.cancel()
        await self.ws.close()
        await self.session.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self._pending:
                self._pending.pop(data["id"]).set_result(data)
            elif data.get("method") == "Runtime.exceptionThrown":
                self.console_errors.append(json.dumps(data["params"]["exceptionDetails"])[:500])

    async def send(self, method: str, **params) -> dict:
        msg_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        await self.ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        data = await asyncio.wait_for(fut, 60)
        if "error" in data:
            raise RuntimeError(f"{method}: {data['error']}")
        return data["result"]

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def evaluate(self, expression: str):
        res = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    async def wait_for(self, expression: str, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                value = await self.evaluate(expression)
            except RuntimeError as e:  # the page is still loading: not there yet
                last = str(e)[-300:]
            else:
                if value:
                    return value
                last = value
            await asyncio.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}; last value {last!r}; page errors "
                             f"{self.console_errors[-3:]}")

    async def screenshot(self, path: Path) -> Path:
        res = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(res["data"]))
        return path
