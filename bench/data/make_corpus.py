"""Builds bench/data/corpus.tsv: labelled log lines in the formats a GPU cluster's logs come in.

The corpus is checked in; this script is how it was made (run it to rebuild it
byte for byte: the seed is fixed). Each event is a template written the way the
program that logs it writes it, with its variables drawn from realistic values
(hosts, users, addresses, block ids, sizes with units, durations, paths, PCI
ids, ranks); its true event id is the template's name. Some events of a format
differ from each other in only a word or two, as real ones do ("Changing view
acls" / "Changing modify acls"), and some variables are words without digits
(user names, states), so a miner cannot win by masking digits alone.

Columns: format, event id, raw record (a multi-line record has its line breaks
written as ``\\n``).

    python bench/data/make_corpus.py            # writes bench/data/corpus.tsv
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

OUT = Path(__file__).with_name("corpus.tsv")
R = random.Random(20261130)

USERS = ["root", "admin", "guest", "test", "oracle", "nagios", "cyrus", "news", "alice", "bob", "ubuntu", "slurm"]
WORDS = ["alpha", "bravo", "delta", "kilo", "lima", "oscar", "sierra", "tango", "zulu", "echo"]
STATES = ["RUNNING", "PENDING", "COMPLETING", "FAILED", "CANCELLED", "TIMEOUT"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def ip() -> str:
    return f"10.{R.randrange(256)}.{R.randrange(256)}.{R.randrange(1, 255)}"


def host() -> str:
    return R.choice([f"gpu-node-{R.randrange(512):03d}", f"dn{R.randrange(1000)}", f"cn{R.randrange(100, 999)}",
                     f"ip-10-0-{R.randrange(256)}-{R.randrange(256)}.ec2.internal", f"node{R.randrange(64)}"])


def val(kind: str) -> str:
    """One random value of a variable kind."""
    r = R
    if kind == "int":
        return str(r.choice([r.randrange(10), r.randrange(1000), r.randrange(10 ** 6)]))
    if kind == "pid":
        return str(r.randrange(100, 65000))
    if kind == "port":
        return str(r.randrange(1024, 65535))
    if kind == "ip":
        return ip()
    if kind == "ipport":
        return f"{ip()}:{r.randrange(1024, 65535)}"
    if kind == "host":
        return host()
    if kind == "fqdn":
        return r.choice([f"{host()}.cluster.local", f"clients{r.randrange(9)}.google.com", f"ns{r.randrange(99)}.example.net",
                         f"{r.randrange(256)}-{r.randrange(256)}-{r.randrange(256)}.dsl.provider.com"])
    if kind == "user":
        return r.choice(USERS)
    if kind == "word":
        return r.choice(WORDS)
    if kind == "state":
        return r.choice(STATES)
    if kind == "hex":
        return f"0x{r.getrandbits(r.choice([16, 32, 48])):x}"
    if kind == "hexid":
        return f"{r.getrandbits(64):016x}"
    if kind == "uuid":
        h = f"{r.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    if kind == "blk":
        return f"blk_{r.choice(['', '-'])}{r.getrandbits(62)}"
    if kind == "size":
        return r.choice([f"{r.uniform(0, 999):.1f} KB", f"{r.randrange(1, 999)} B", f"{r.uniform(0, 99):.1f} MB",
                         f"{r.uniform(0, 80):.2f} GiB"])
    if kind == "bytes":
        return str(r.choice([67108864, r.randrange(1, 1 << 30)]))
    if kind == "dur":
        return r.choice([f"{r.randrange(1, 999)} ms", f"{r.uniform(0, 60):.2f}s", f"{r.randrange(1, 99)} sec",
                         f"{r.randrange(100, 9999)}ms"])
    if kind == "float":
        return f"{r.uniform(0, 100):.4f}"
    if kind == "path":
        return r.choice([f"/var/lib/job/{r.randrange(9999)}/out.log", f"/scratch/{r.choice(USERS)}/run-{r.randrange(99)}/ckpt",
                         f"/dev/nvidia{r.randrange(8)}", f"/home/{r.choice(USERS)}/.cache/torch/kernels_{r.randrange(99)}",
                         f"/data/shard-{r.randrange(9999):05d}.tar"])
    if kind == "pci":
        return f"0000:{r.randrange(256):02x}:{r.randrange(32):02x}.{r.randrange(8)}"
    if kind == "gpu":
        return str(r.randrange(8))
    if kind == "rank":
        return str(r.randrange(512))
    if kind == "job":
        return str(r.randrange(100000, 999999))
    if kind == "step":
        return f"{r.randrange(100000, 999999)}.{r.choice(['0', '1', 'batch', 'extern'])}"
    if kind == "nodelist":
        a = r.randrange(100)
        return r.choice([f"gpu-node-[{a:03d}-{a + r.randrange(1, 32):03d}]", host(), f"{host()},{host()}"])
    if kind == "iplist":
        return ",".join(ip() for _ in range(r.randrange(1, 4)))
    if kind == "mac":
        return ":".join(f"{r.randrange(256):02x}" for _ in range(6))
    if kind == "hpcpart":
        return r.choice(["alt0", "scsi0", "SCSI-WWID:01000010:6005-08b4-0001-00c6-0006-3000-003d-0000", "ee0"])
    if kind == "status":
        return r.choice(["200", "202", "204", "404", "500"])
    if kind == "req":
        return f"req-{val('uuid')}"
    if kind == "url":
        return r.choice([f"/v2/{r.getrandbits(64):x}/servers/detail", f"/api/v1/jobs/{r.randrange(99999)}",
                         f"/index.php?id={r.randrange(999)}", f"/static/img/{r.choice(WORDS)}.png"])
    raise KeyError(kind)


_VAR = re.compile(r"\{([a-z]+)\}")


def fill(template: str) -> str:
    """The template with each ``{kind}`` replaced by a fresh value; other braces stay."""
    return _VAR.sub(lambda m: val(m.group(1)), template)


def ts_syslog() -> str:
    return f"{R.choice(MONTHS)} {R.randrange(1, 29):>2} {R.randrange(24):02d}:{R.randrange(60):02d}:{R.randrange(60):02d}"


def ts_iso(sep: str = " ", frac: str = ",") -> str:
    return (f"2025-{R.randrange(1, 13):02d}-{R.randrange(1, 29):02d}{sep}{R.randrange(24):02d}:{R.randrange(60):02d}:"
            f"{R.randrange(60):02d}{frac}{R.randrange(1000):03d}")


# -- formats: a header maker and the events (id suffix -> message template) -------------------------------
def h_syslog(tag: str) -> str:
    return f"{ts_syslog()} {host()} {tag}[{val('pid')}]: "


HEADERS = {
    "syslog": lambda ev: h_syslog(ev.get("tag", "systemd")),
    "kernel": lambda ev: f"{ts_syslog()} {host()} kernel: [{R.uniform(1, 900000):12.6f}] ",
    "dmesg": lambda ev: f"[{R.uniform(1, 900000):12.6f}] ",
    "openssh": lambda ev: f"{ts_syslog()} LabSZ sshd[{val('pid')}]: ",
    "hdfs": lambda ev: f"0811{R.randrange(10, 12)} {R.randrange(240000):06d} {R.randrange(1, 3000)} {ev.get('lvl', 'INFO')} {ev.get('tag', 'dfs.DataNode')}: ",
    "log4j": lambda ev: f"{ts_iso()} {ev.get('lvl', 'INFO')} [{R.choice(['main', 'IPC Server handler ' + str(R.randrange(30)) + ' on 8020', 'AsyncDispatcher event handler', 'RMCommunicator Allocator'])}] {ev.get('tag', 'org.apache.hadoop.yarn.server.ResourceManager')}: ",
    "spark": lambda ev: f"17/06/{R.randrange(1, 29):02d} {R.randrange(24):02d}:{R.randrange(60):02d}:{R.randrange(60):02d} {ev.get('lvl', 'INFO')} {ev.get('tag', 'executor.Executor')}: ",
    "zookeeper": lambda ev: f"{ts_iso()} - {ev.get('lvl', 'INFO'):<5} [{ev.get('tag', 'NIOServerCxn.Factory:0.0.0.0/0.0.0.0:2181:NIOServerCnxn')}@{R.randrange(100, 1100)}] - ",
    "bgl": lambda ev: f"- {R.randrange(1117838570, 1136000000)} 2005.06.{R.randrange(1, 29):02d} R{R.randrange(80):02d}-M{R.randrange(2)}-N{R.randrange(16)}-C:J{R.randrange(18):02d}-U{R.randrange(2)}1 2005-06-{R.randrange(1, 29):02d}-{R.randrange(24):02d}.{R.randrange(60):02d}.{R.randrange(60):02d}.{R.randrange(999999):06d} R{R.randrange(80):02d}-M{R.randrange(2)}-N{R.randrange(16)}-C:J{R.randrange(18):02d}-U{R.randrange(2)}1 RAS {ev.get('tag', 'KERNEL')} {ev.get('lvl', 'INFO')} ",
    "hpc": lambda ev: f"{R.randrange(1, 500000)} node-{R.randrange(300)} {ev.get('tag', 'unix.hw')} {ev.get('state', 'state_change.unavailable')} {R.randrange(1077804742, 1150000000)} 1 ",
    "thunderbird": lambda ev: (lambda h: f"- {R.randrange(1131566461, 1140000000)} 2005.11.{R.randrange(1, 29):02d} {h} {ts_syslog()} {h}/{h} {ev.get('tag', 'kernel')}: ")(f"dn{R.randrange(1000)}"),
    "apache": lambda ev: f"[{R.choice(DAYS)} {R.choice(MONTHS)} {R.randrange(1, 29):02d} {R.randrange(24):02d}:{R.randrange(60):02d}:{R.randrange(60):02d} 2005] [{ev.get('lvl', 'notice')}] ",
    "proxifier": lambda ev: f"[{R.randrange(1, 13):02d}.{R.randrange(1, 29):02d} {R.randrange(24):02d}:{R.randrange(60):02d}:{R.randrange(60):02d}] {R.choice(['chrome.exe', 'firefox.exe', 'Dropbox.exe', 'svchost.exe *64', 'WeChat.exe'])} - ",
    "android": lambda ev: f"03-{R.randrange(1, 29):02d} {R.randrange(24):02d}:{R.randrange(60):02d}:{R.randrange(60):02d}.{R.randrange(1000):03d}  {R.randrange(100, 9999):>4}  {R.randrange(100, 9999):>4} {ev.get('lvl', 'D')} {ev.get('tag', 'PowerManagerService')}: ",
    "healthapp": lambda ev: f"201712{R.randrange(1, 29):02d}-{R.randrange(24)}:{R.randrange(60)}:{R.randrange(60)}:{R.randrange(1000)}|{ev.get('tag', 'Step_LSC')}|30002312|",
    "windows": lambda ev: f"{ts_iso(frac='')[:19]}, {ev.get('lvl', 'Info')}                  {ev.get('tag', 'CBS')}    ",
    "mac": lambda ev: f"{ts_syslog()} calvisitor-10-105-{R.randrange(160, 163)}-{R.randrange(256)} {ev.get('tag', 'kernel')}[{R.choice(['0', val('pid')])}]: ",
    "openstack": lambda ev: f"nova-{ev.get('svc', 'compute')}.log.1.2017-05-16_13:53:08 {ts_iso(frac='.')} {R.randrange(2000, 30000)} {ev.get('lvl', 'INFO')} {ev.get('tag', 'nova.compute.manager')} [{val('req')} {R.getrandbits(128):032x} {R.getrandbits(128):032x} - - -] ",
    "nccl": lambda ev: f"{host()}:{val('pid')}:{val('pid')} [{R.randrange(8)}] {ev.get('src', '')}NCCL {ev.get('lvl', 'INFO')} ",
    "torch": lambda ev: ev["hdr"](),
    "slurm": lambda ev: f"[{ts_iso(sep='T', frac='.')}] " + (f"[{val('step')}] " if ev.get("step") else "") + (f"{ev['lvl']}: " if ev.get("lvl") else ""),
    "python": lambda ev: f"{ts_iso()} - {ev.get('tag', 'trainer')} - {ev.get('lvl', 'INFO')} - ",
    "cri": lambda ev: f"{ts_iso(sep='T', frac='.')}123456Z {R.choice(['stdout', 'stderr'])} F {ts_iso()} {ev.get('lvl', 'INFO')} {ev.get('tag', 'controller')}: ",
    "journald": lambda ev: None,
    "glog": lambda ev: f"{ev.get('lvl', 'I')}{R.randrange(1, 13):02d}{R.randrange(1, 29):02d} {R.randrange(24):02d}:{R.randrange(60):02d}:{R.randrange(60):02d}.{R.randrange(999999):06d} {R.randrange(1, 99999):>6} {ev.get('tag', 'server.cc:123')}] ",
    "access": lambda ev: None,
}


def combos(subjects: list[str], predicates: list[str]) -> list[str]:
    return [f"{s} {p}" for s in subjects for p in predicates]


from corpus_events import EVENTS  # noqa: E402  (the event tables, one per format)


def record(fmt: str, ev: dict) -> str:
    msg = fill(ev["t"])
    if fmt == "journald":
        import json
        return json.dumps({"__REALTIME_TIMESTAMP": str(R.randrange(1700000000000000, 1760000000000000)),
                           "_HOSTNAME": host(), "SYSLOG_IDENTIFIER": ev.get("tag", "systemd"),
                           "PRIORITY": str(ev.get("prio", 6)), "MESSAGE": msg})
    if fmt == "access":
        return (f'{ip()} - {R.choice(["-", "alice", "bob"])} [{R.randrange(1, 29):02d}/Nov/2025:{R.randrange(24):02d}:'
                f'{R.randrange(60):02d}:{R.randrange(60):02d} +0000] {msg}')
    if fmt == "torch" and msg.startswith("Traceback"):  # torchrun prefixes every line of a rank's output
        prefix = f"[rank{R.randrange(64)}]: "
        return "\n".join(prefix + line for line in msg.split("\n"))
    return fill(HEADERS[fmt](ev)) + msg


def main() -> int:
    rows = []
    distinct = set()
    for fmt, events in EVENTS.items():
        weights = [R.paretovariate(1.2) for _ in events]
        total = sum(weights)
        n_lines = max(300, min(1500, 25 * len(events)))
        for i, ev in enumerate(events):
            distinct.add(f"{fmt}.{ev['id']}")
            n = max(2, round(n_lines * weights[i] / total))
            for _ in range(n):
                rows.append((R.random(), fmt, f"{fmt}.{ev['id']}", record(fmt, ev)))
    rows.sort(key=lambda r: (r[1], r[0]))
    with OUT.open("w") as f:
        f.write("# Labelled log corpus for bench/log_accuracy.py (made by make_corpus.py; tuned on).\n")
        f.write("# format\tevent\trecord (\\n = a line break inside a multi-line record)\n")
        for _, fmt, eid, text in rows:
            f.write(f"{fmt}\t{eid}\t{text.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}\n")
    print(f"{len(rows)} records, {len(distinct)} events, {len(EVENTS)} formats -> {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
