"""``gpuwatch silence create|list|expire``: mute alerts for a while, through the notify worker's API.

    gpuwatch silence create 'node="gpu-07"' 'alertname=~"Gpu.*"' --duration 2h \\
        --author alice --comment "replacing GPU 3"
    gpuwatch silence list
    gpuwatch silence expire 3f2a9c...
"""

from __future__ import annotations

import argparse
import getpass
import re
import time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("silence", help="create, list or expire silences",
                       description="Silences mute matching alerts until they expire; needs `gpuwatch notify` running.")
    p.add_argument("--url", default=None, help="notify worker API (default: discovered from $GPUWATCH_HOME)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    acts.required = True
    c = acts.add_parser("create", help="create a silence")
    c.add_argument("matchers", nargs="+", help='label matchers: name="value", name!="v", name=~"re", name!~"re"')
    c.add_argument("--duration", "-d", default="1h", help="how long (default 1h), e.g. 30m, 2h, 1d")
    c.add_argument("--author", "-a", default=None, help="who is silencing (default: your login name)")
    c.add_argument("--comment", "-c", required=True, help="why")
    # "--duration -5m" reaches our check (and its clear message) instead of argparse's "expected one argument".
    c._negative_number_matcher = re.compile(r"^-\d")
    lst = acts.add_parser("list", help="list silences")
    lst.add_argument("--all", action="store_true", help="include expired silences")
    e = acts.add_parser("expire", help="expire silences now")
    e.add_argument("ids", nargs="+", help="silence ids (a unique prefix of 6+ characters is enough)")
    for action in (c, lst, e):  # `silence list --json` as well as `silence --json list`
        action.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    p.set_defaults(func=run)


def _table(silences: list[dict]) -> str:
    if not silences:
        return "no silences"
    rows = [("ID", "STATE", "ENDS", "AUTHOR", "MATCHERS", "COMMENT")]
    for s in silences:
        rows.append((s["id"][:12], s["state"], time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(s["ends_at"])),
                     s["created_by"], " ".join(s["matchers"]), s["comment"]))
    from pipelines.cli.text_table import aligned

    return aligned(rows)


def _check_duration(text: str) -> None:
    from pipelines.cli import UsageError
    from pipelines.notify.durations import parse_duration

    if text.strip().startswith("-"):
        raise UsageError(f"--duration must be positive, got {text}; write it like 30m, 2h or 1d")
    try:
        if parse_duration(text) <= 0:
            raise UsageError(f"--duration must be positive, got {text}; write it like 30m, 2h or 1d")
    except ValueError as e:
        raise UsageError(f"--duration: {e}") from None


def run(args: argparse.Namespace) -> int:
    import orjson

    from pipelines.cli import UsageError
    from pipelines.notify.api_client import ApiError, NotifyApi
    from pipelines.notify.matchers import MatcherError, parse_matchers

    api = NotifyApi(args.url)
    try:
        if args.action == "create":
            try:
                parse_matchers(args.matchers)
            except MatcherError as e:
                raise UsageError(str(e)) from None
            _check_duration(args.duration)
            s = api.create_silence(args.matchers, args.author or getpass.getuser(), args.comment,
                                   duration=args.duration)
            print(orjson.dumps(s).decode() if args.json else s["id"])
        elif args.action == "list":
            items = api.silences(active_only=not args.all)
            print(orjson.dumps(items).decode() if args.json else _table(items))
        else:
            for sid in args.ids:
                s = api.expire_silence(sid)
                print(f"expired {s['id']}")
    except ApiError as e:
        raise UsageError(str(e)) from None
    return 0
