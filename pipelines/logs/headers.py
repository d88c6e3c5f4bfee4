"""Line headers: split a raw log line into timestamp, level, component, host and the message.

Why: the template miner must see only the message. A timestamp, a weekday, a
host or thread name in front of it picks drain's tree branch, so one event
splits by weekday or thread; masked header tokens also count as matching text,
so unrelated messages of one length merge. Every known header format is a
regex with named groups (``ts``, ``level``, ``component``, ``host`` and
``msg``); the first format that matches a line wins. A source's lines almost
always share one format, so the format that matched the source's last line is
tried first (one regex a line), and the rest are tried in order, indexed by
the line's first character.

A source with a format of its own names it in the config as a regex with a
``msg`` group (see :class:`HeaderParser`); JSON lines (journald ``-o json``,
Docker's json-file) are read as JSON.

>>> p = HeaderParser()
>>> h = p.parse("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown")
>>> h.fmt, h.host, h.component, h.msg
('syslog', 'combo', 'sshd(pam_unix)', 'check pass; user unknown')
>>> h = p.parse("2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster",
...             source="/var/log/hadoop/am.log")
>>> h.fmt, h.level, h.component, h.msg
('java', 'info', 'org.apache.hadoop.mapreduce.v2.app.MRAppMaster', 'Created MRAppMaster')
>>> p.parse("step 10 loss 2.5").msg
'step 10 loss 2.5'
"""

from __future__ import annotations

import re
from typing import NamedTuple

import orjson

_LEVELS = (r"TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRIT|CRITICAL|FATAL|SEVERE|ALERT|EMERG|PANIC"
           r"|trace|debug|info|notice|warn|warning|error|err|crit|critical|fatal|severe")
_ISO = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_MON = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"

#: (name, first characters a matching line can start with ("" = any), regex). Order matters: the
#: first match wins, so specific formats come before general ones.
FORMATS: tuple[tuple[str, str, str], ...] = (
    # Kubernetes CRI container log: the payload may carry its own header (parsed once more).
    ("cri", "0123456789", rf"(?P<ts>\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (?:stdout|stderr) [FP] (?P<msg>.*)"),
    # /dev/kmsg: "6,1234,5678901,-;message"
    ("kmsg", "0123456789", r"(?P<prio>\d{1,3}),\d+,(?P<ts>\d+),[^;]*;(?P<msg>.*)"),
    # BGL (Blue Gene/L RAS): label epoch date node time node type component level message
    ("bgl", "-ABCDEFGHIJKLMNOPQRSTUVWXYZ", r"\S+ \d{9,10} \d{4}\.\d\d\.\d\d (?P<host>\S+) (?P<ts>\d{4}-\d\d-\d\d-\d\d\.\d\d\.\d\d\.\d+) \S+ [A-Z]+ (?P<component>[A-Z_]+) (?P<level>[A-Z]+) (?P<msg>.*)"),
    # Thunderbird: label epoch date host syslog-line
    ("thunderbird", "-ABCDEFGHIJKLMNOPQRSTUVWXYZ", rf"\S+ \d{{9,10}} \d{{4}}\.\d\d\.\d\d (?P<host>\S+) (?P<ts>{_MON} +\d{{1,2}} \d\d:\d\d:\d\d) \S+ (?:(?P<component>[^\s:\[][^:\[]*?)(?:\[\d+\])?: )?(?P<msg>.*)"),
    # HPC (LANL): logid node component state epoch flag message
    ("hpc", "0123456789", r"\d+ (?P<host>\S+) (?P<component>\S+) (?P<state>\S+) (?P<ts>\d{9,10}) \d+ (?P<msg>.*)"),
    # HDFS: 081109 203615 148 INFO dfs.DataNode$PacketResponder: message
    ("hdfs", "0123456789", rf"(?P<ts>\d{{6}} \d{{6}}) \d+ (?P<level>{_LEVELS}) (?P<component>[\w.$]+): (?P<msg>.*)"),
    # Spark: 17/06/09 20:10:40 INFO executor.Executor: message
    ("spark", "0123456789", rf"(?P<ts>\d\d/\d\d/\d\d \d\d:\d\d:\d\d) (?P<level>{_LEVELS}) (?P<component>[\w.$]+): (?P<msg>.*)"),
    # Android logcat (threadtime): 03-17 16:13:38.811  1702  2395 D WindowManager: message
    ("logcat", "0123456789", r"(?P<ts>\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) +\d+ +\d+ (?P<level>[VDIWEFA]) (?P<component>.*?) *: (?P<msg>.*)"),
    # HealthApp: 20171223-22:15:29:606|Step_LSC|30002312|message
    ("pipes", "0123456789", r"(?P<ts>\d{8}-\d{1,2}:\d{1,2}:\d{1,2}:\d{1,3})\|(?P<component>[^|]*)\|\d+\|(?P<msg>.*)"),
    # Zookeeper: 2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/...:FastLeaderElection@774] - message
    ("zookeeper", "0123456789", rf"(?P<ts>{_ISO}) - (?P<level>{_LEVELS}) +\[(?P<component>.*?)\] - (?P<msg>.*)"),
    # Windows CBS: 2016-09-28 04:30:30, Info                  CBS    message
    ("windows", "0123456789", r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d), (?P<level>\w+) +(?P<component>\S+) +(?P<msg>.*)"),
    # OpenStack (oslo.log), optionally after the file name: ts pid LEVEL module [context] [instance: uuid] message
    ("oslo", "", rf"(?:\S+\.log\S* )?(?P<ts>{_ISO}) \d+ (?P<level>{_LEVELS}) (?P<component>[\w.]+) (?:\[[^\]]*\] )?(?:\[instance: [^\]]*\] )?(?P<msg>.*)"),
    # Python logging "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
    ("python", "0123456789", rf"(?P<ts>{_ISO}) - (?P<component>\S+) - (?P<level>{_LEVELS}) - (?P<msg>.*)"),
    # log4j / logback / Hadoop / Python "%(asctime)s %(levelname)s ...": ts [thread] LEVEL [thread] logger: msg
    ("java", "0123456789", rf"(?P<ts>{_ISO}) +(?:\[[^\]]*\] +)?(?P<level>{_LEVELS}) +(?:\[.*?\] +)?(?:(?P<component>[\w.$]+(?:\[[^\]]*\])?) ?(?::| -) )?(?P<msg>.*)"),
    # RFC 5424 syslog
    ("rfc5424", "<", r"<\d{1,3}>1 (?P<ts>\S+) (?P<host>\S+) (?P<component>\S+) \S+ \S+ (?:-|(?:\[.*?\])+) ?(?P<msg>.*)"),
    # RFC 3164 syslog / rsyslog / journalctl short(-iso|-precise) / macOS: ts host tag[pid] (addr): msg
    ("syslog", "<ADFJMNOS0123456789", rf"(?:<\d{{1,3}}>)?(?P<ts>{_MON} +\d{{1,2}} \d\d:\d\d:\d\d(?:\.\d+)?(?: \d{{4}})?|{_ISO}) (?P<host>(?!(?:{_LEVELS})\b)[\w.][\w.:@/-]*) (?:(?P<component>[^\s:\[][^:\[]*?)(?:\[\d+\])?(?: \([^)]*\))?: )?(?P<msg>.*)"),
    # Slurm daemons: [2024-01-01T12:00:00.123] [123.0] error: message
    ("slurm", "[", rf"\[(?P<ts>\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)\] (?:\[(?P<component>[\w.]+)\] )?(?:(?P<level>error|debug\d?|verbose|info|warning|fatal): )?(?P<msg>.*)"),
    # Apache error log: [Sun Dec 04 04:47:44 2005] [notice] [client 1.2.3.4] message
    ("apache", "[", rf"\[(?P<ts>{_DAY} {_MON} +\d\d? \d\d:\d\d:\d\d(?:\.\d+)? \d{{4}})\] \[(?:[\w]+:)?(?P<level>\w+)\] (?:\[pid \d+(?::tid \d+)?\] )?(?:\[client (?P<host>[^\]]+)\] )?(?P<msg>.*)"),
    # dmesg / dmesg -T
    ("dmesg", "[", rf"\[ *(?P<ts>\d+\.\d+|{_DAY} {_MON} +\d+ \d\d:\d\d:\d\d \d{{4}})\] (?P<msg>.*)"),
    # Proxifier: [10.30 16:49:06] chrome.exe - message
    ("proxifier", "[", r"\[(?P<ts>\d\d\.\d\d \d\d:\d\d:\d\d)\] (?P<component>.*?) - (?P<msg>.*)"),
    # torchrun / torch.distributed.elastic: [2024-01-01 12:00:00,123] torch.distributed...: [WARNING] message
    ("torchelastic", "[", rf"\[(?P<ts>{_ISO})\] (?P<component>[\w.]+): \[(?P<level>{_LEVELS})\] (?P<msg>.*)"),
    # PyTorch c10d / glog inside brackets: [rank0]:[E1215 10:00:00.123 ProcessGroupNCCL.cpp:475] message
    ("c10d", "[", r"(?:\[rank\d+\]:)?\[(?P<level>[IWEF])(?P<ts>\d{4} \d\d:\d\d:\d\d\.\d+)? ?(?:\d+ )?(?P<component>[\w./-]+:\d+)\] (?P<msg>.*)"),
    # generic "[ts] [LEVEL] message" / "[ts] message"
    ("bracketed", "[", rf"\[(?P<ts>{_ISO}|[^\]]*\d\d:\d\d:\d\d[^\]]*)\] (?:\[?(?P<level>{_LEVELS})\]?:? )?(?P<msg>.*)"),
    # glog: I0101 12:00:00.123456  1234 file.cc:123] message
    ("glog", "IWEF", r"(?P<level>[IWEF])(?P<ts>\d{4} \d\d:\d\d:\d\d\.\d+) +\d+ (?P<component>[^\]\s]+)\] (?P<msg>.*)"),
    # NCCL: host:pid:tid [dev] [file:line] NCCL INFO message
    ("nccl", "", r"(?P<host>[\w.-]+):\d+:\d+ \[\d+\] (?:(?P<component>\S+:\d+) )?NCCL (?P<level>INFO|WARN|ERROR|TRACE|ABORT) (?P<msg>.*)"),
    # web access log (common/combined): host ident user [ts] "request" status bytes ...
    ("access", "", r"(?P<host>\S+) \S+ \S+ \[(?P<ts>[^\]]+)\] (?P<msg>\".*)"),
    # Python logging.basicConfig: INFO:root:message
    ("pylevel", "CDEIW", r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):(?P<component>[\w.]+):(?P<msg>.*)"),
    # any leading ISO-8601 timestamp, then an optional level
    ("iso", "0123456789", rf"(?P<ts>{_ISO})[ \t]+(?:\| *)?(?:\[?(?P<level>{_LEVELS})\]?:?[ \t]+(?:\| *)?)?(?P<msg>.*)"),
    # a bare level in front: "ERROR: message", "[WARN] message", "W: message"
    ("level", "[ABCDEFINSTWabcdefinstw", rf"\[?(?P<level>{_LEVELS})\]?:? (?P<msg>.*)"),
)

#: A kernel timestamp left at the front of a message ("kernel: [ 12.345678] NVRM: ...").
_KERNEL_TS = re.compile(r"\[ *\d+\.\d+\] ")
_JSON_MSG = ("MESSAGE", "message", "msg", "log")
_JSON_LEVEL = ("level", "levelname", "severity", "PRIORITY", "lvl")
_JSON_TS = ("ts", "time", "timestamp", "@timestamp", "__REALTIME_TIMESTAMP")
_JSON_HOST = ("_HOSTNAME", "host", "hostname")
_JSON_COMPONENT = ("SYSLOG_IDENTIFIER", "logger", "name", "_COMM", "component")


class Header(NamedTuple):
    """What the header said, and the message to mine. Missing fields are ""."""

    msg: str
    ts: str = ""
    level: str = ""
    component: str = ""
    host: str = ""
    fmt: str = ""


class HeaderFormatError(ValueError):
    """A configured line format that cannot be used; the text says why."""


def compile_format(regex: str) -> re.Pattern:
    """A user's line format: a regex with a ``msg`` named group (``ts``, ``level``, ``component``, ``host`` optional)."""
    try:
        pat = re.compile(regex)
    except re.error as e:
        raise HeaderFormatError(f"line format {regex!r} is not a valid regular expression: {e}") from None
    if "msg" not in pat.groupindex:
        raise HeaderFormatError(f"line format {regex!r} needs a named group (?P<msg>...) for the message")
    return _compile(regex)


class HeaderParser:
    """Finds each line's header: a source's own format first, then the built-in formats.

    ``overrides`` maps a source (file path or stream name) to its own format
    (a regex with named groups, or a built-in format's name); ``default``
    applies to every source without one (``None``: recognise each line).
    Per-source settings from configuration arrive per call (``parse(fmt=...)``).
    """

    def __init__(self, overrides: dict[str, str] | None = None, default: str | None = None) -> None:
        self._compiled = [(name, first, _compile(rx)) for name, first, rx in FORMATS]
        self._by_name = {name: (name, pat) for name, _, pat in self._compiled}
        by_char: dict[str, list[tuple[str, re.Pattern]]] = {}
        anywhere = [(name, pat) for name, first, pat in self._compiled if not first]
        for name, first, pat in self._compiled:
            for ch in first:
                by_char.setdefault(ch, [])
        for ch in by_char:
            by_char[ch] = [(name, pat) for name, first, pat in self._compiled if not first or ch in first]
        self._by_char = by_char
        self._anywhere = anywhere
        self._overrides = {src: self._resolve(fmt) for src, fmt in (overrides or {}).items()}
        self._default = self._resolve(default) if default else None
        #: source -> the format that matched its last line
        self._sticky: dict[str, tuple[str, re.Pattern]] = {}
        #: formats named per call (``parse(fmt=...)``), compiled once
        self._formats: dict[str, tuple[str, re.Pattern]] = {}

    def _resolve(self, fmt: str) -> tuple[str, re.Pattern]:
        if fmt in self._by_name:
            return self._by_name[fmt]
        if re.fullmatch(r"[A-Za-z_][\w-]*", fmt):  # a name, not a regex: one we do not know
            raise HeaderFormatError(f"unknown line format {fmt!r}; built-in: {', '.join(sorted(self._by_name))}, "
                                    "or a regex with (?P<msg>...)")
        return ("custom", compile_format(fmt))

    def parse(self, line: str, source: str = "", fmt: str | None = None) -> Header:
        """The header of one line (``Header(msg=line)`` when none is recognised).

        ``fmt``: this line's format (a built-in name or a regex), as a source's
        configuration names it; a line it does not fit is tried against the
        built-in formats.
        """
        if fmt is None and "\n" not in line:  # the common case: a one-line record of a source seen before
            sticky = self._sticky.get(source)
            if sticky is not None and line[:1] not in "{_":
                m = sticky[1].fullmatch(line)
                if m is not None:
                    return self._header(m, sticky[0])
        if line.startswith("__CURSOR="):  # an entry of journalctl -o export, joined by agents.logrecords
            h = _export_header(line)
            if h is not None:
                return h
        if "\n" in line:  # a multi-line record: the header is on its first line
            head, _, rest = line.partition("\n")
            h = self.parse(head, source, fmt)
            return h._replace(msg=f"{h.msg}\n{rest}")
        fixed = self._formats.get(fmt) if fmt else None
        if fmt and fixed is None:
            fixed = self._formats[fmt] = self._resolve(fmt)
        fixed = fixed or self._overrides.get(source) or self._default
        if fixed is not None:
            m = fixed[1].fullmatch(line)
            if m is not None:
                return self._header(m, fixed[0])
            if self._default is not None and fmt is None:
                return Header(line)
        if not line:
            return Header(line)
        first = line[0]
        if first == "{" and line.endswith("}"):
            h = _json_header(line)
            if h is not None:
                return h
        sticky = self._sticky.get(source)
        if sticky is not None:
            m = sticky[1].fullmatch(line)
            if m is not None:
                return self._header(m, sticky[0])
        for name, pat in self._by_char.get(first, self._anywhere):
            m = pat.fullmatch(line)
            if m is not None:
                if len(self._sticky) > 10_000:
                    self._sticky.clear()
                self._sticky[source] = (name, pat)
                return self._header(m, name)
        return Header(line)

    def _header(self, m: re.Match, name: str) -> Header:
        ts, level, component, host, msg = m.group("ts", "level", "component", "host", "msg")
        if name in _SPECIAL:
            if name == "cri" and msg:  # the container's own line may carry a header
                inner = self.parse(msg, "\0cri")
                return inner._replace(ts=ts, fmt=f"cri+{inner.fmt}" if inner.fmt else "cri")
            if name == "kmsg":
                level = _SYSLOG_PRIORITY[int(m.group("prio")) & 7]
        if msg[:1] == "[" and (k := _KERNEL_TS.match(msg)):
            msg = msg[k.end():]
        if level:
            level = _NORMALISED.get(level) or _norm_level(level)
        return _new_header(Header, (msg.strip(), ts or "", level or "", component or "", host or "", name))


def _compile(regex: str) -> re.Pattern:
    """A format's regex, with an empty group added for each field it lacks (one ``m.group`` call reads all)."""
    names = re.compile(regex).groupindex
    missing = "".join(f"(?P<{f}>)" for f in ("ts", "level", "component", "host") if f not in names)
    return re.compile(regex + missing)


_SPECIAL = frozenset({"cri", "kmsg"})
#: ``Header`` built from a tuple without the keyword handling of its ``__new__`` (one per line).
_new_header = tuple.__new__
_SYSLOG_PRIORITY = ("emerg", "alert", "crit", "error", "warning", "notice", "info", "debug")
_LEVEL_NAMES = {"warn": "warning", "err": "error", "crit": "critical", "w": "warning", "e": "error", "i": "info",
                "d": "debug", "f": "fatal", "v": "trace", "a": "fatal", "severe": "error", "emerg": "fatal"}


_NORMALISED: dict[str, str] = {}


def _norm_level(level: str) -> str:
    """"WARN", "W", "warning" -> "warning"; cached (a source has a handful of levels)."""
    norm = _NORMALISED.get(level)
    if norm is None:
        low = level.lower()
        norm = _LEVEL_NAMES.get(low, low)[:16]
        if len(_NORMALISED) < 1000:
            _NORMALISED[level] = norm
    return norm


def _export_header(entry: str) -> Header | None:
    """An entry of ``journalctl -o export``: one ``FIELD=value`` a line."""
    fields = dict(f.partition("=")[::2] for f in entry.split("\n") if "=" in f)
    if "MESSAGE" not in fields:
        return None
    level = fields.get("PRIORITY", "")
    level = _SYSLOG_PRIORITY[int(level) & 7] if level.isdigit() else _norm_level(level) if level else ""
    return Header(fields["MESSAGE"].strip(), fields.get("__REALTIME_TIMESTAMP", ""), level,
                  fields.get("SYSLOG_IDENTIFIER") or fields.get("_COMM", ""), fields.get("_HOSTNAME", ""), "journal-export")


def _json_header(line: str) -> Header | None:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    msg = next((doc[k] for k in _JSON_MSG if isinstance(doc.get(k), str)), None)
    if msg is None:
        return None

    def first(keys: tuple[str, ...]) -> str:
        return next((str(doc[k]) for k in keys if doc.get(k) not in (None, "")), "")

    level = first(_JSON_LEVEL)
    if level.isdigit():
        level = _SYSLOG_PRIORITY[int(level) & 7]
    return Header(msg.rstrip("\n"), first(_JSON_TS), _norm_level(level), first(_JSON_COMPONENT), first(_JSON_HOST),
                  "json")


__all__ = ["FORMATS", "Header", "HeaderFormatError", "HeaderParser", "compile_format"]
