"""``gpuwatch agent``: the node agent, on a real host or as a simulated cluster."""

from __future__ import annotations

import argparse
import sys

import orjson

from pipelines.cli import UsageError

#: One simulator's limits: more nodes take minutes to build before the first tick, and more GPUs make
#: one node's scrape (about 22 samples per GPU) too big for one Kafka message (2 MiB).
MAX_SIMULATED_NODES, MAX_SIMULATED_GPUS = 10_000, 64


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="run the node agent (or a simulated cluster with --simulate)",
                       description="Collect GPU, host, XID and log signals and publish them to Kafka.")
    from agents.cli import add_real_host_arguments  # real-host options live with the agent

    add_real_host_arguments(p)
    p.add_argument("--simulate", type=int, metavar="NODES", help="simulate NODES nodes instead of reading this host")
    p.add_argument("--gpus", type=int, default=8, help="GPUs per simulated node (default 8)")
    p.add_argument("--ticks", type=int, default=60, help="scrapes per simulated node, then exit (default 60)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between scrapes (default 1)")
    p.add_argument("--realtime", action="store_true",
                   help="simulate in real time; by default ticks run at full speed with timestamps ending now")
    from agents.simulator import FAULT_KINDS

    p.add_argument("--fault", action="append", default=[], metavar="KIND@NODE/GPU:START[+DUR][*MAG]",
                   help="inject a fault (repeatable), START and DUR in ticks, MAG in the kind's unit "
                        "(default and units: agents/simulator_config.py), e.g. thermal_runaway@node-1/3:20+60*2; "
                        f"kinds: {', '.join(FAULT_KINDS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metrics-topic", default=None)
    p.add_argument("--events-topic", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.settings import CommonSettings
    from schemas.topics import EVENTS, METRICS

    settings = CommonSettings()
    kafka_conf = settings.kafka_client_config()
    if args.bootstrap:
        kafka_conf["bootstrap.servers"] = args.bootstrap
    if args.simulate is None:
        from agents.cli import run as run_real_host  # the real-host agent, also `gpuwatch-agent`
        from agents.config import ConfigError

        try:
            return run_real_host(args, kafka_conf)
        except ConfigError as e:
            raise UsageError(str(e)) from None
    from agents.simulate import SimulationPlan, run_simulation
    from agents.simulator import Fault

    real_host_only = [flag for flag, given in (("--once", args.once), ("--dry-run", args.dry_run),
                                                ("--config", args.config), ("--metrics-port", args.metrics_port))
                      if given not in (None, False)]
    if real_host_only:  # they were ignored: --dry-run went on to publish to Kafka
        raise UsageError(f"{', '.join(real_host_only)} applies to this host's agent, not to --simulate")
    if args.simulate < 1 or args.gpus < 1 or args.ticks < 1:
        raise UsageError("--simulate, --gpus and --ticks must be at least 1")
    if args.simulate > MAX_SIMULATED_NODES:
        raise UsageError(f"--simulate {args.simulate} is more than the {MAX_SIMULATED_NODES:,} nodes one simulator "
                         "runs; start several simulators for more")
    if args.gpus > MAX_SIMULATED_GPUS:
        raise UsageError(f"--gpus {args.gpus} is more than {MAX_SIMULATED_GPUS} GPUs per node (one node's scrape "
                         "must fit one Kafka message)")
    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")
    if not 0 < args.interval <= 3600:  # NaN fails this too
        raise UsageError(f"--interval must be from 0 to 3600 seconds, got {args.interval}")
    try:
        faults = [Fault.parse(f) for f in args.fault]
        for spec, fault in zip(args.fault, faults):
            if fault.start >= args.ticks:
                raise ValueError(f"fault {spec} starts at tick {fault.start}, but the run ends after tick "
                                 f"{args.ticks - 1}: raise --ticks or start the fault earlier")
        plan = SimulationPlan(nodes=args.simulate, gpus=args.gpus, ticks=args.ticks, interval=args.interval,
                              realtime=args.realtime, seed=args.seed, faults=faults,
                              metrics_topic=args.metrics_topic or settings.topic(METRICS.name),
                              events_topic=args.events_topic or settings.topic(EVENTS.name))
        from agents.simulator import SimulatedCluster
        SimulatedCluster(nodes=plan.nodes, gpus=plan.gpus, faults=faults)  # validates fault targets
    except ValueError as e:
        raise UsageError(str(e)) from None
    from kafka_security import KafkaSecurityError, check
    from pipelines.topics_admin import KafkaUnreachable, check_reachable

    try:
        check(kafka_conf)
        check_reachable(kafka_conf)  # otherwise every message waits out its delivery timeout first
    except (KafkaSecurityError, KafkaUnreachable) as e:
        print(f"gpuwatch agent: error: {e}", file=sys.stderr)
        return 1
    summary = run_simulation(plan, kafka_conf)
    print(orjson.dumps(summary).decode())
    return 0 if summary["samples_published"] is not None else 1


