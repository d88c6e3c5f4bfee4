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


def _firing_table(alerts: list[dict]) -> str:
    """Firing alerts, one a line, in aligned columns: where (node, GPU) and who owns it."""
    rows = [("FINGERPRINT", "ALERT", "NODE", "GPU", "SEVERITY", "STATE", "OWNER")]
    for a in alerts:
        if a["status"] != "firing":
            continue
        labels = a["labels"]
        state = "silenced" if a.get("silenced_by") else "inhibited" if a.get("inhibited_by") else "firing"
        rows.append((a["fingerprint"], labels.get("alertname", ""), labels.get("node", "-") or "-",
                     labels.get("gpu", "-") or "-", labels.get("severity", ""), state,
                     f"acked by {a['acked_by']}" if a["acked_by"] else "unacked"))
    if len(rows) == 1:
        return "no firing alerts"
    from pipelines.cli.text_table import aligned

    return aligned(rows)


def run(args: argparse.Namespace) -> int:
    from pipelines.cli import UsageError
    from pipelines.notify.api_client import ApiError, NotifyApi

    api = NotifyApi(args.url)
    try:
        if getattr(args, "list", False):
            print(_firing_table(api.alerts()))
            return 0
        if not args.fingerprints:
            raise UsageError("give one or more alert fingerprints (or --list)")
        for fp in args.fingerprints:
            if args.ack_action == "ack":
                owner = args.owner or getpass.getuser()
                a = api.ack(fp, owner, args.comment)
                took = f"; taken over from {a['taken_from']}" if a.get("taken_from") else ""
                print(f"acked {fp} (owner {owner}{took})")
            else:
                # With --owner, the worker refuses to remove someone else's ack; without, it says whose it was.
                a = api.unack(fp, args.owner or "")
                print(f"unacked {fp} (was acked by {a['owner']})")
    except ApiError as e:
        raise UsageError(str(e)) from None
    return 0
