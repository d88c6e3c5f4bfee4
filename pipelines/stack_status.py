"""``gpuwatch status``: is every part up, is data flowing, what is wrong now.

Everything is asked of the running parts themselves (the broker's committed
offsets, the pipeline's and the notifier's ``/metrics``, the history through
the read-only query path), so status works the same for a stack ``gpuwatch up``
started and for processes started by hand on the same ``GPUWATCH_HOME``.
Each check has a short timeout and reports its own failure; one part being
down never hides the others.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson

from pipelines.local_stack import StackRecord

#: How far back "the last minute" may reach for the previous metrics sample.
RATE_WINDOW_S = (20.0, 300.0)


def gather(settings, notify_url: str | None = None) -> dict:
    home = Path(settings.home).absolute()
    rec = StackRecord.load(home)
    out: dict = {"home": str(home), "checked_at": time.time(), "processes": _processes(rec)}
    out["console"] = rec.console_url() if rec else ""
    out["broker"] = _broker(settings)
    out["lag"] = _lag(settings, rec) if out["broker"]["reachable"] else []
    pipeline_url = _pipeline_url(settings, rec)
    out["pipeline"] = _pipeline(pipeline_url, home)
    # The store is read only through a running pipeline: status never opens a chDB path itself, so it
    # cannot take the path from a pipeline that is starting.
    store_ok = bool(out["pipeline"].get("reachable")) and _store_served(settings)
    out["notifier"] = _notifier(settings, notify_url, store_ok)
    out["incidents"] = (_incidents(settings, notify_url) if store_ok else
                        {"open": None, "error": "the pipeline is not running", "items": []})
    return out


def _processes(rec: StackRecord | None) -> list[dict]:
    if rec is None:
        return []
    rows = []
    broker = rec.broker()
    if broker is not None:
        pid = broker.pid()
        rows.append({"name": "kafka", "pid": pid, "running": pid is not None, "address": rec.kafka_bootstrap,
                     "log": str(broker.log_file)})
    for p in rec.parts:
        rows.append({"name": p.name, "pid": p.pid, "running": p.alive(), "address": p.url, "log": p.log})
    return rows


def _broker(settings) -> dict:
    from confluent_kafka.admin import AdminClient

    conf = {**settings.kafka_client_config(), "socket.timeout.ms": 3000, "log_level": 0}
    try:
        md = AdminClient(conf).list_topics(timeout=3)
        return {"bootstrap": settings.kafka_bootstrap, "reachable": True, "brokers": len(md.brokers),
                "topics": len([t for t in md.topics if not t.startswith("__")])}
    except Exception as e:  # noqa: BLE001 - any client failure means "not reachable", said in one line
        return {"bootstrap": settings.kafka_bootstrap, "reachable": False, "error": str(e)[:200]}


def _groups(settings, rec: StackRecord | None) -> dict[str, list[str]]:
    """Consumer groups of the pipeline and the notifier, with the topics each reads."""
    from schemas.topics import ALERTS, TOPICS

    prefix = rec.topic_prefix if rec else settings.topic_prefix
    app_id = rec.app_id if rec else "gpuwatch-pipeline"
    name = (lambda t: f"{prefix}.{t}" if prefix else t)
    alerts = name(ALERTS.name)
    pipeline_topics = [name(t.name) for t in TOPICS.values() if t.name not in (ALERTS.name,)
                       and "deadletter" not in t.name]
    return {app_id: pipeline_topics, f"gpuwatch-notify.{alerts}": [alerts]}


def _lag(settings, rec: StackRecord | None) -> list[dict]:
    from confluent_kafka import Consumer, TopicPartition

    rows = []
    for group, topics in _groups(settings, rec).items():
        consumer = Consumer({**settings.kafka_client_config(), "group.id": group, "enable.auto.commit": False,
                             "log_level": 0})
        try:
            md = consumer.list_topics(timeout=3)
            for topic in topics:
                if topic not in md.topics:
                    continue
                tps = [TopicPartition(topic, p) for p in md.topics[topic].partitions]
                committed = consumer.committed(tps, timeout=3)
                lag = 0
                for tp in committed:
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=3)
                    lag += max(0, high - (tp.offset if tp.offset >= 0 else low))
                rows.append({"group": group, "topic": topic, "lag": lag})
        except Exception as e:  # noqa: BLE001
            rows.append({"group": group, "topic": "*", "lag": None, "error": str(e)[:200]})
        finally:
            consumer.close()
    return rows


def _store_served(settings) -> bool:
    """True when reading the store goes to a server or to the pipeline that owns the chDB path."""
    from pipelines.store import ChdbOwner, chdb_path, is_chdb

    dsn = settings.dsn()
    return not (is_chdb(dsn) and chdb_path(dsn)) or ChdbOwner(chdb_path(dsn)).current() is not None


def _pipeline_url(settings, rec: StackRecord | None) -> str | None:
    from pipelines.store import ChdbOwner, chdb_path, is_chdb

    dsn = settings.dsn()
    if is_chdb(dsn) and chdb_path(dsn):
        owner = ChdbOwner(chdb_path(dsn)).current()
        if owner:
            return owner["web_url"]
    part = rec.part("pipeline") if rec else None
    return part.url if part and part.alive() else None


def _scrape(url: str) -> dict[str, float]:
    """Prometheus text as ``{"name{labels}": value}`` (labels sorted) plus per-name sums."""
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(f"{url}/metrics", timeout=3, trust_env=False)
    r.raise_for_status()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


def _pipeline(url: str | None, home: Path) -> dict:
    if not url:
        return {"reachable": False, "error": "no pipeline owns this home's store"}
    try:
        m = _scrape(url)
    except (httpx.HTTPError, ValueError) as e:
        return {"url": url, "reachable": False, "error": f"{type(e).__name__}: {e}"[:200]}
    now = {"rows_written": m.get("gpuwatch_rows_written_total", 0.0),
           "insert_errors": m.get("gpuwatch_insert_errors", 0.0),
           "dead_lettered": m.get("gpuwatch_messages_dead_lettered_total", 0.0)}
    out = {"url": url, "reachable": True, **{f"{k}_total": int(v) for k, v in now.items()}}
    out.update(_last_minute(home, url, now))
    return out


def _last_minute(home: Path, url: str, now: dict[str, float]) -> dict:
    """Per-minute rates against the previous status's sample (kept in ``run/status-sample.json``).

    Counters only grow while one pipeline runs; a smaller value means it restarted.
    """
    path = home / "run" / "status-sample.json"
    t = time.time()
    try:
        prev = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        prev = None
    out: dict = {"per_minute_over_s": None}
    if prev and prev.get("url") == url and RATE_WINDOW_S[0] <= t - prev["t"] <= RATE_WINDOW_S[1]:
        span = t - prev["t"]
        if all(now[k] >= prev["values"].get(k, 0) for k in now):
            out = {f"{k}_per_minute": round((now[k] - prev["values"].get(k, 0)) * 60 / span, 1) for k in now}
            out["per_minute_over_s"] = round(span)
    if not prev or prev.get("url") != url or t - prev["t"] > RATE_WINDOW_S[0]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps({"t": t, "url": url, "values": now}))
    return out


def _notifier(settings, notify_url: str | None, store_ok: bool = True) -> dict:
    from pipelines.notify.api_client import discover_url

    url = discover_url(notify_url)
    try:
        m = _scrape(url)
    except (httpx.HTTPError, ValueError) as e:
        return {"url": url, "reachable": False, "error": f"{type(e).__name__}"}
    out = {"url": url, "reachable": True, "queued_alerts": int(m.get("gpuwatch_notify_active_alerts", 0)),
           "groups": int(m.get("gpuwatch_notify_aggregation_groups", 0)),
           "notifications_total": int(m.get("gpuwatch_notify_notifications_total", 0))}
    if store_ok:
        out.update(_last_delivery(settings))
    return out


def _last_delivery(settings) -> dict:
    from pipelines.cli.query import fetch
    from pipelines.store import StoreError

    try:
        _, rows = fetch("SELECT max(ts), argMax(outcome, ts), argMax(integration, ts), count() "
                        "FROM gpuwatch.notification_attempts", settings.dsn(), settings.clickhouse_database)
    except StoreError as e:
        return {"last_delivery": None, "last_delivery_error": str(e)[:200]}
    ts, outcome, integration, n = rows[0]
    if not n:
        return {"last_delivery": None}
    return {"last_delivery": str(ts), "last_delivery_outcome": outcome, "last_delivery_integration": integration}


def _incidents(settings, notify_url: str | None) -> dict:
    from pipelines.open_incidents import load
    from pipelines.store import StoreError

    try:
        items, _ = load(settings.dsn(), settings.clickhouse_database, notify_url=notify_url, limit=20)
    except StoreError as e:
        return {"open": None, "error": str(e)[:200], "items": []}
    return {"open": len(items), "items": [i.as_dict() for i in items]}
