"""``gpuwatch kafka start|stop|status``: the local broker for development and the demo."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kafka", help="start, stop or check the local Kafka broker",
                       description="Run Apache Kafka 3.9 (KRaft) on loopback, fetched from Maven Central.")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--port", type=int, default=9092, help="client port (default 9092)")
    p.add_argument("--controller-port", type=int, default=9093, help="KRaft controller port (default 9093)")
    p.add_argument("--data-dir", default=None, help="broker data directory (default $GPUWATCH_HOME/kafka)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from infra.kafka.broker import BrokerError, LocalKafka
    from pipelines.settings import CommonSettings

    from pipelines.cli import UsageError
    from pipelines.listen_ports import PortError, check_port_free, check_port_range

    try:
        check_port_range(args.port, "--port")
        check_port_range(args.controller_port, "--controller-port")
    except PortError as e:
        raise UsageError(str(e)) from None
    if args.port == args.controller_port:
        raise UsageError(f"--port and --controller-port are both {args.port}: the broker and its controller "
                         "each need a port of their own")
    settings = CommonSettings()
    data_dir = args.data_dir or settings.home / "kafka"
    broker = LocalKafka(data_dir, args.port, args.controller_port)
    try:
        if args.action == "start":
            already = broker.running()
            if not already:
                try:
                    check_port_free("127.0.0.1", args.port, "--port")
                    check_port_free("127.0.0.1", args.controller_port, "--controller-port")
                except PortError as e:  # the machine's state, not the command line: exit 1
                    print(f"gpuwatch kafka: error: {e}", file=sys.stderr)
                    return 1
            broker.start()
            from pipelines.topics_admin import ensure_topics
            ensure_topics(broker.bootstrap, settings.topic_specs())  # the names and partitions the pipeline uses
            print(f"kafka {'already ' if already else ''}running on {broker.bootstrap} (pid {broker.pid()})")
        elif args.action == "stop":
            print("kafka stopped" if broker.stop() else "kafka was not running")
        else:
            st = broker.status()
            print(f"kafka {'running' if st['running'] else 'stopped'} on {st['bootstrap']} "
                  f"(data {st['data_dir']}, version {st['version']})")
            return 0 if st["running"] else 3
    except BrokerError as e:
        print(f"gpuwatch kafka: error: {e}", file=sys.stderr)
        return 1
    return 0
