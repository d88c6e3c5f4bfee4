"""``gpuwatch agent`` on a real host: load the config, build the agent, run until SIGTERM.

Exit codes: 0 after a clean stop; a configuration a person must fix raises
``ConfigError`` with the problems listed, which the CLI prints and exits 2.
``--once`` prints one scrape's messages as JSON lines and exits, which is how to check a host's
setup (which GPUs and fields NVML reads, which collectors are healthy)
without Kafka.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import orjson

from agents.config import AgentConfig, ConfigError, load_config

log = logging.getLogger("gpuwatch.agent")

#: Where the agent looks for its config when neither --config nor $GPUWATCH_AGENT_CONFIG names one.
DEFAULT_CONFIG = Path("/etc/gpuwatch/agent.yaml")


class PrintDelivery:
    """Writes each message as one JSON line to a stream instead of Kafka (``--once``, ``--dry-run``)."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout
        self.sent = 0

    def send(self, topic: str, key: str, payload: bytes) -> None:
        self.sent += 1
        self.stream.write(orjson.dumps({"topic": topic, "key": key, "value": orjson.loads(payload)}).decode() + "\n")

    def pump(self) -> None:
        self.stream.flush()

    def expedite(self) -> None:
        self.stream.flush()

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent}

    def close(self, timeout_s: float = 0.0) -> int:
        self.stream.flush()
        return 0


def _config_path(args: argparse.Namespace) -> str | None:
    path = getattr(args, "config", None) or os.environ.get("GPUWATCH_AGENT_CONFIG")
    if path:
        return path
    return str(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else None


def _usable_state_dir(cfg: AgentConfig, printing_only: bool) -> AgentConfig:
    """The state directory made and writable now, not found wanting at shutdown (the XID cursor and the
    spool live there). A run that only prints (--once, --dry-run) goes on without one, with a warning."""
    try:
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(cfg.state_dir, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
        return cfg
    except OSError as e:
        problem = f"state_dir {cfg.state_dir}: {e.strerror or e}"
    if not printing_only:
        raise ConfigError(f"{problem}; set state_dir to a writable directory "
                          "(it keeps the XID cursor and the spool)")
    log.warning("%s; printing only, so going on without one (XIDs read now are not remembered)", problem)
    return cfg.model_copy(update={"state_dir": None})


def build_delivery(cfg: AgentConfig, kafka_conf: dict[str, Any]):
    from agents.delivery import Delivery
    from agents.spool import Spool, SpoolError

    try:
        spool = Spool(cfg.spool_dir, max_bytes=cfg.spool.max_bytes, segment_bytes=cfg.spool.segment_bytes)
    except SpoolError as e:
        raise ConfigError(f"spool: {e}; set spool.dir or state_dir to a writable directory") from None
    return Delivery(kafka_conf, spool, delivery_timeout_s=cfg.kafka.delivery_timeout_s, retry_s=cfg.spool.retry_s)


def run_agent(args: argparse.Namespace, kafka_conf: dict[str, Any], nvml: Any = None) -> int:
    from agents.malloc_tuning import return_freed_memory

    return_freed_memory()  # before the producer's and collectors' threads start
    cfg = load_config(_config_path(args))  # ConfigError: the caller prints it and exits 2
    logging.basicConfig(level=cfg.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    conf = {**kafka_conf, **cfg.kafka.client_config()}
    if getattr(args, "bootstrap", None):
        conf["bootstrap.servers"] = args.bootstrap
    once = bool(getattr(args, "once", False))
    port = getattr(args, "metrics_port", None)
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"--metrics-port {port} is out of range: use a port from 1 to 65535")
    cfg = _usable_state_dir(cfg, printing_only=once or bool(getattr(args, "dry_run", False)))
    from agents.node_agent import NodeAgent

    delivery = PrintDelivery() if once or getattr(args, "dry_run", False) else build_delivery(cfg, conf)
    agent = NodeAgent(cfg, delivery, nvml=nvml)
    if (cfg.exporter.enabled or port is not None) and not once:
        from agents.prometheus_exporter import PrometheusExporter

        host, cfg_port = cfg.exporter.address
        agent.exporter = PrometheusExporter(cfg.node, agent.context)
        try:
            agent.exporter.serve(host, cfg_port if port is None else port)
        except OSError as e:
            raise ConfigError(f"exporter: cannot listen on {host}:{cfg_port if port is None else port} ({e}); "
                              "set exporter.listen or --metrics-port to a free port") from None
    # Everything made so far (modules, config, validators: ~40,000 objects) lives as long as the agent; out
    # of the collector's sight, a full collection looks only at what scrapes made (~10 ms less each time).
    gc.freeze()
    stop = threading.Event()

    def _stop(signum, _frame) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if once:
        # A silent first scrape, so the printed one has rates (bytes/s, CPU %) too.
        agent.delivery = PrintDelivery(open(os.devnull, "w"))
        agent.tick()
        stop.wait(cfg.interval_s)
        agent.delivery = delivery
        agent.shutdown()
        return 0
    try:
        agent.run(stop)
    finally:
        if agent.exporter is not None:
            agent.exporter.close()
    return 0
