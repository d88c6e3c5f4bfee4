"""``gpuwatch ack`` and ``gpuwatch unack``: someone owns this alert (it stops repeating).

    gpuwatch ack 1f0c2b7e9a8d4c33 --owner alice --comment "looking at it"
    gpuwatch ack --list
    gpuwatch unack 1f0c2b7e9a8d4c33
"""

from __future__ import annotations

import argparse
import getpass


def register(sub: argparse._SubParsersAction) -> None:
    for name, helptext in (("ack", "acknowledge firing alerts: they stop repeating, and still notify on resolve"),
                           ("unack", "withdraw an acknowledgement")):
        p = sub.add_parser(name, help=helptext, description=helptext + "; needs `gpuwatch notify` running.")
        p.add_argument("fingerprints", nargs="*", help="alert fingerprints (see `gpuwatch ack --list`)")
        p.add_argument("--owner", "-o", default=None, help="who owns it (default: your login name)")
        if name == "ack":
            p.add_argument("--comment", "-c", default="", help="a note for the others")
            p.add_argument("--list", action="store_true", help="list firing alerts with who acked them")
        p.add_argument("--url", default=None, help="notify worker API (default: discovered from $GPUWATCH_HOME)")
        p.set_defaults(func=run, ack_action=name)


def run(args: argparse.Namespace) -> int:
    from pipelines.cli import UsageError
    from pipelines.notify.api_client import ApiError, NotifyApi

    api = NotifyApi(args.url)
    owner = args.owner or getpass.getuser()
    try:
        if getattr(args, "list", False):
            for a in api.alerts():
                if a["status"] == "firing":
                    who = f"acked by {a['acked_by']}" if a["acked_by"] else "unacked"
                    print(f"{a['fingerprint']}  {a['labels'].get('alertname', '')}  "
                          f"node={a['labels'].get('node', '')}  {who}")
            return 0
        if not args.fingerprints:
            raise UsageError("give one or more alert fingerprints (or --list)")
        for fp in args.fingerprints:
            if args.ack_action == "ack":
                api.ack(fp, owner, args.comment)
                print(f"acked {fp} (owner {owner})")
            else:
                api.unack(fp, owner)
                print(f"unacked {fp}")
    except ApiError as e:
        raise UsageError(str(e)) from None
    return 0
