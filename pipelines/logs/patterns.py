"""Known critical log lines -> node events, from patterns kept as data (patterns.yaml).

A pattern names the failure (NCCL timeout, CUDA OOM, ECC, XID, segfault, OOM
killer, hung task), its severity and the action an operator should take. Where
a pattern is an XID in disguise (an ``Xid`` line in an application log, or
"uncorrectable ECC error", which is XID 48), severity, action and title come
from the shared XID catalog (:mod:`schemas.xid`), so a log line and a kernel
line about the same fault say the same thing.

Each pattern lists literal ``contains`` words; a line is only tried against the
regexes if it holds one of them, which keeps the check at about a microsecond
a line on the hot path.

>>> import time
>>> book = PatternBook.load()
>>> ev = book.match("n1", time.time(), "RuntimeError: CUDA error: an illegal memory access was encountered")
>>> ev.title, ev.severity, ev.action
('CUDA illegal memory access', 'critical', 'restart_app')
>>> book.match("n1", time.time(), "step 10 loss 2.5") is None
True
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas import xid as xid_catalog
from schemas.events import Action, EventSeverity, NodeEvent

BUILTIN_PATTERNS = Path(__file__).with_name("patterns.yaml")
#: Environment variable naming a site's extra pattern files (``os.pathsep``-separated).
SITE_PATTERNS_ENV = "GPUWATCH_LOG_PATTERNS"
MAX_EVENT_MESSAGE = 4096


class PatternError(ValueError):
    """A pattern file that cannot be used; the text says which pattern and why."""


class LogPattern(BaseModel):
    """One pattern as written in YAML, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    title: str = Field(min_length=1, max_length=200)
    contains: list[str] = Field(min_length=1)
    regex: str
    severity: EventSeverity = "warning"
    action: Action = "none"
    xid: int | None = Field(default=None, ge=0)
    cooldown_s: float = Field(default=60.0, ge=0)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"regex does not compile: {e}") from None
        return v

    @field_validator("contains")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        if any(not w.strip() for w in v):
            raise ValueError("contains words must not be empty")
        if any(c.isdigit() for w in v for c in w):
            raise ValueError("contains words must have no digits (the pre-check is cached per line shape, "
                             "digits ignored); put digits in the regex")
        return [w.lower() for w in v]


@dataclass
class _Compiled:
    spec: LogPattern
    regex: re.Pattern


@dataclass
class PatternBook:
    """Compiled patterns in match order, plus per-(node, pattern, GPU) cooldowns.

    ``suppressed`` counts matches swallowed by a cooldown (a flood of one
    error becomes one event a minute, not one per line).
    """

    patterns: list[_Compiled]
    last_event: dict[tuple[str, str, int, str], float] = field(default_factory=dict)
    suppressed: int = 0
    matched: int = 0
    #: Matches whose event failed validation (e.g. a timestamp too old for the wire contract).
    invalid: int = 0

    def __post_init__(self) -> None:
        self._keywords = tuple(sorted({w for p in self.patterns for w in p.spec.contains}))
        #: keyword -> the positions (in match order) of the patterns that name it
        self._by_keyword: dict[str, tuple[int, ...]] = {
            w: tuple(i for i, p in enumerate(self.patterns) if w in p.spec.contains) for w in self._keywords}

    @classmethod
    def load(cls, extra_files: list[Path | str] | None = None) -> PatternBook:
        """Built-in patterns plus a site's files (``extra_files`` or ``$GPUWATCH_LOG_PATTERNS``).

        A site pattern whose name is built in replaces it in place; new ones
        are tried first.
        """
        if extra_files is None:
            env = os.environ.get(SITE_PATTERNS_ENV, "")
            extra_files = [p for p in env.split(os.pathsep) if p]
        builtin = _read(BUILTIN_PATTERNS)
        by_name = {p.name: p for p in builtin}
        new: list[LogPattern] = []
        for path in extra_files:
            for p in _read(Path(path)):
                if p.name in by_name:
                    by_name[p.name] = p
                else:
                    new.append(p)
        ordered = new + [by_name[p.name] for p in builtin]
        return cls([_Compiled(p, re.compile(p.regex)) for p in ordered])

    def names(self) -> list[str]:
        return [p.spec.name for p in self.patterns]

    def might_match(self, line: str) -> bool:
        """Cheap pre-check: does the line hold any pattern's ``contains`` word?"""
        low = line.lower()
        for w in self._keywords:
            if w in low:
                return True
        return False

    def match(self, node: str, ts: float, line: str, *, source: str = "",
              labels: dict[str, str] | None = None) -> NodeEvent | None:
        """The :class:`NodeEvent` for the first pattern matching ``line``, or None.

        None also when the pattern's cooldown for this node and GPU is running.
        The event is validated here, once; callers record it as it is.
        """
        low = line.lower()
        present = [w for w in self._keywords if w in low]
        if not present:
            return None
        by_keyword = self._by_keyword
        candidates = by_keyword[present[0]] if len(present) == 1 else sorted({
            i for w in present for i in by_keyword[w]})
        for i in candidates:  # only the patterns whose words the line holds, in match order
            p = self.patterns[i]
            m = p.regex.search(line)
            if m is None:
                continue
            self.matched += 1
            return self._event(p, m, node, ts, line, source, labels or {})
        return None

    def _event(self, p: _Compiled, m: re.Match, node: str, ts: float, line: str, source: str,
               labels: dict[str, str]) -> NodeEvent | None:
        groups = m.groupdict()
        code = int(groups["xid"]) if groups.get("xid") else (p.spec.xid or 0)
        gpu = int(groups["gpu"]) if groups.get("gpu") and int(groups["gpu"]) <= 1023 else -1
        pci = xid_catalog.normalize_pci_bus_id(groups["pci"]) if groups.get("pci") else ""
        key = (node, p.spec.name, gpu, pci)
        last = self.last_event.get(key)
        if last is not None and 0 <= ts - last < p.spec.cooldown_s:
            self.suppressed += 1
            return None
        self.last_event[key] = ts
        if len(self.last_event) > 100_000:  # bounded: forget the oldest half
            keep = sorted(self.last_event.items(), key=lambda kv: kv[1])[len(self.last_event) // 2:]
            self.last_event = dict(keep)
        severity, action, title = p.spec.severity, p.spec.action, p.spec.title
        info = xid_catalog.lookup(code) if code else None
        if info is not None:
            severity, action = info.severity, info.action
            title = f"{p.spec.title}: XID {code} {info.meaning}" if p.spec.name == "xid_in_app_log" else title
        elif p.spec.name == "xid_in_app_log":
            title = f"XID {code} (not in the catalog)"
        ev_labels = {k: v for k, v in list(labels.items())[:29]}
        ev_labels["pattern"] = p.spec.name
        if source:
            ev_labels["log_source"] = source[-256:]
        try:
            return NodeEvent(
                node=node, ts=ts, source="log", code=code, gpu=gpu, pci_bus_id=pci, severity=severity,
                action=action, title=title[:256], message=line[:MAX_EVENT_MESSAGE], labels=ev_labels,
            )
        except ValidationError:
            self.invalid += 1
            return None


def _read(path: Path) -> list[LogPattern]:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise PatternError(f"cannot read log patterns from {path}: {e}") from None
    items = (doc or {}).get("patterns") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise PatternError(f"{path}: expected a top-level 'patterns:' list")
    out, seen = [], set()
    for i, item in enumerate(items):
        name = item.get("name", f"#{i + 1}") if isinstance(item, dict) else f"#{i + 1}"
        try:
            p = LogPattern.model_validate(item)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "pattern"
            raise PatternError(f"{path}: pattern {name!r}: {where}: {first['msg']}") from None
        if p.name in seen:
            raise PatternError(f"{path}: pattern name {p.name!r} appears twice")
        seen.add(p.name)
        out.append(p)
    return out


__all__ = ["BUILTIN_PATTERNS", "LogPattern", "PatternBook", "PatternError", "SITE_PATTERNS_ENV"]
