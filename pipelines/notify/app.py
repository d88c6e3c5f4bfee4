"""The notification worker, wired: Kafka alerts -> route -> group -> mute -> dedup -> retry -> receivers.

This file only connects the parts; each lives in its own module.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import orjson

from pipelines.notify.config import NotifyConfig
from pipelines.notify.settings import NotifySettings
from pipelines.shutdown import exit_within
from pipelines.store import redact

log = logging.getLogger("gpuwatch.notify")
API_FILE = "api.json"


def run_worker(settings: NotifySettings, config: NotifyConfig) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from pipelines.listen_ports import PortError, check_port_free
    from pipelines.notify.state_db import StateError
    from kafka_security import KafkaSecurityError, aiokafka_kwargs
    from pipelines.topics_admin import KafkaUnreachable
    try:
        check_port_free(*settings.listen_host_port(), "GPUWATCH_NOTIFY_LISTEN (or --listen)")
        aiokafka_kwargs(settings.kafka_client_config())  # unusable security settings: one line, now
        return asyncio.run(serve(settings, config))
    except (StateError, KafkaUnreachable, KafkaSecurityError, PortError) as e:
        print(f"gpuwatch notify: error: {e}", file=sys.stderr)
        return 1


async def serve(settings: NotifySettings, config: NotifyConfig, stop: asyncio.Event | None = None) -> int:
    from aiohttp import web

    from pipelines.notify.api import build_app
    from pipelines.notify.history import KafkaHistory
    from pipelines.notify.kafka_io import AlertConsumer, ensure_notify_topics, make_producer
    from pipelines.notify.metrics import NotifyMetrics
    from pipelines.notify.service import NotifyService
    from pipelines.notify.state_db import StateDB

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        exit_within(settings.shutdown_timeout_s, "notify")  # a clean stop waits on the broker; bound it
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)

    await asyncio.to_thread(ensure_notify_topics, settings)
    db = StateDB(settings.state_dir())
    metrics = NotifyMetrics()
    producer = make_producer(settings)
    await producer.start()
    history = KafkaHistory(producer, settings.history_topic(), metrics)
    service = NotifyService(config, db, history, metrics)
    ready = {"ready": False}
    token = settings.notify_api_token.get_secret_value() if settings.notify_api_token else None
    runner = web.AppRunner(build_app(service, token, ready), access_log=None)
    await runner.setup()
    host, port = settings.listen_host_port()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    api_url = f"http://{host}:{bound}"
    api_file = settings.state_dir() / API_FILE
    api_file.write_bytes(orjson.dumps({"pid": os.getpid(), "url": api_url}))
    consumer = AlertConsumer(settings, service.ingest, metrics, producer)
    try:
        await consumer.start()
        restored = service.restore()
        ready["ready"] = True
        print(f"notify: ready (alerts {settings.alerts_topic()} on {redact(settings.kafka_bootstrap)}, "
              f"api {api_url}, {restored} alerts restored)", flush=True)
        while not stop.is_set():
            try:
                await _until_stopped(consumer.run(stop), stop)
            except Exception as e:
                log.error("consuming alerts failed, retrying in 1s: %s: %s", type(e).__name__, e)
                await asyncio.sleep(1)
    finally:
        print("notify: stopping", flush=True)
        # Each step on its own, bounded and quiet: with the broker gone, aiokafka's stops raise
        # CancelledError or wait out retries, and one failed step must not skip the others.
        await _quietly("consumer", consumer.stop())
        await _quietly("deliveries", service.close())
        await _quietly("history", history.drain(), timeout=5)
        await _quietly("producer", producer.stop())
        await _quietly("api", runner.cleanup())
        try:
            api_file.unlink()
        except OSError:
            pass
        db.close()
    return 0


async def _quietly(what: str, coro, timeout: float = 3.0) -> None:
    """Await one shutdown step; a failure or a timeout is one log line, not a traceback."""
    try:
        await asyncio.wait_for(coro, timeout)
    except (Exception, asyncio.CancelledError) as e:  # noqa: BLE001 - stopping anyway
        log.warning("stopping %s: %s", what, type(e).__name__ if not str(e) else f"{type(e).__name__}: {e}")


async def _until_stopped(coro, stop: asyncio.Event) -> None:
    """Run ``coro`` until it ends or ``stop`` is set (then cancel it)."""
    task = asyncio.ensure_future(coro)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        elif task.exception():
            raise task.exception()
