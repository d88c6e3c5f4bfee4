"""``gpuwatch-agent`` (or ``python -m agents``): the node agent on its own, without the pipeline.

This is what a GPU node installs (``pip install ./packaging/agent``): the same
real-host agent that ``gpuwatch agent`` runs, with only the agent's
dependencies. ``gpuwatch agent`` in the full install delegates here for
real-host mode and keeps ``--simulate`` for itself.

Exit codes: 0 after a clean stop, 2 for a configuration a person must fix.
"""

from __future__ import annotations

import argparse
import sys


def add_real_host_arguments(p: argparse.ArgumentParser) -> None:
    """The real-host options, shared with ``gpuwatch agent``."""
    p.add_argument("--config", help="agent YAML config file (default $GPUWATCH_AGENT_CONFIG "
                                    "or /etc/gpuwatch/agent.yaml)")
    p.add_argument("--once", action="store_true",
                   help="print one scrape's messages as JSON lines and exit (no Kafka)")
    p.add_argument("--dry-run", action="store_true",
                   help="print every message as a JSON line instead of sending it to Kafka")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default $GPUWATCH_KAFKA_BOOTSTRAP)")
    p.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve Prometheus /metrics (dcgm-exporter names) on PORT; overrides prometheus_exporter.port")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpuwatch-agent",
                                description="Collect GPU, host, XID and log signals on this node and publish "
                                            "them to Kafka.")
    add_real_host_arguments(p)
    return p


def run(args: argparse.Namespace, kafka_conf: dict[str, str] | None = None) -> int:
    """Run the real-host agent; ConfigError (a problem a person must fix) propagates."""
    from agents.kafka_env import KafkaEnv
    from agents.main import run_agent

    conf = KafkaEnv().client_config() if kafka_conf is None else dict(kafka_conf)
    if args.bootstrap:
        conf["bootstrap.servers"] = args.bootstrap
    return run_agent(args, conf)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from agents.lean_imports import import_without_openssl

    import_without_openssl()  # before anything imports pydantic or confluent-kafka: ~4-7 MB less RSS
    from agents.config import ConfigError

    try:
        return run(args)
    except ConfigError as e:
        print(f"gpuwatch-agent: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
