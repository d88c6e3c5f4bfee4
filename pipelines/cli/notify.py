"""``gpuwatch notify``: the notification worker (alerts topic -> people).

Zero-config quick mode for the demo::

    gpuwatch notify --webhook http://127.0.0.1:8080/hook

routes every alert to that webhook and to the log, one notification per alert,
with no grouping delay. For real routing, grouping and receivers, pass an
Alertmanager-style YAML file with ``--config`` (see ``pipelines/notify/config.py``).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("notify", help="run the notification worker (routing, grouping, silences, receivers)",
                       description="Consume alert events and deliver notifications: route -> group -> "
                                   "mute -> dedup -> retry -> receiver.")
    p.add_argument("--config", default=None, help="routing/receivers YAML (default $GPUWATCH_NOTIFY_CONFIG)")
    p.add_argument("--webhook", action="append", default=[], metavar="URL",
                   help="quick mode: send every alert to this webhook (repeatable) and to the log")
    p.add_argument("--webhook-secret", default=None,
                   help="HMAC-SHA256 key for quick-mode webhooks (default $GPUWATCH_NOTIFY_WEBHOOK_SECRET)")
    p.add_argument("--group-wait", default=None, help="quick mode: wait before the first notification (default 0s)")
    p.add_argument("--group-interval", default=None, help="quick mode: wait between updates (default 1s)")
    p.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers (default $GPUWATCH_KAFKA_BOOTSTRAP)")
    p.add_argument("--alerts-topic", default=None, help="alerts topic (default $GPUWATCH_NOTIFY_ALERTS_TOPIC)")
    p.add_argument("--history-topic", default=None,
                   help="topic for history records (default $GPUWATCH_NOTIFY_HISTORY_TOPIC)")
    p.add_argument("--topic-prefix", default=None, help="prefix for the default topic names ('PREFIX.name')")
    p.add_argument("--listen", default=None,
                   help="HTTP API address host:port, port 0 picks one (default $GPUWATCH_NOTIFY_LISTEN)")
    p.add_argument("--home", default=None, help="state directory (default $GPUWATCH_HOME)")
    p.add_argument("--check-config", action="store_true", help="validate the configuration, print the routes, exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.cli import UsageError
    from pipelines.notify.config import ConfigError, load_config, quick_config
    from pipelines.notify.settings import NotifySettings

    overrides = {k: v for k, v in {
        "kafka_bootstrap": args.bootstrap,
        "notify_alerts_topic": args.alerts_topic,
        "notify_history_topic": args.history_topic,
        "topic_prefix": args.topic_prefix,
        "notify_listen": args.listen,
        "notify_config": args.config,
        "home": args.home,
        "notify_webhook_secret": args.webhook_secret,
    }.items() if v is not None}
    try:
        settings = NotifySettings(**overrides)
    except ValueError as e:
        from pipelines.cli import settings_error_line

        raise UsageError(settings_error_line(e) or str(e).splitlines()[0]) from None
    webhooks = list(args.webhook) or list(settings.notify_webhook_urls)
    try:
        if webhooks and settings.notify_config:
            raise UsageError("use either --config (routing file) or --webhook (quick mode), not both")
        if settings.notify_config:
            config = load_config(settings.notify_config)
        elif webhooks:
            config = quick_config(webhooks, secret=settings.notify_webhook_secret,
                                  group_wait=args.group_wait, group_interval=args.group_interval,
                                  external_url=settings.notify_external_url)
        else:
            raise UsageError("nothing to notify: pass --webhook URL (quick mode) or --config FILE")
    except ConfigError as e:
        raise UsageError(str(e)) from None
    if args.check_config:
        print(config.describe())
        return 0

    from pipelines.notify.app import run_worker
    return run_worker(settings, config)
