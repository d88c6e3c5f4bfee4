"""Log files collector: tail files and globs, join multi-line records, publish log batches.

Every scrape it reads what each file gained (up to a byte budget, so a burst
is spread over scrapes rather than dropped), joins continuation lines into one
record (a Python traceback and its final exception line become one record),
and hands the records to the agent, which sends them as ``LogBatch`` messages.
Offsets are saved in the agent's state directory, so a restart resumes
without re-sending or skipping lines.

>>> j = MultilineJoiner()
>>> j.feed(["ERROR step failed", "Traceback (most recent call last):", '  File "t.py", line 1', "ValueError: bad", "next"])
['ERROR step failed\\nTraceback (most recent call last):\\n  File "t.py", line 1\\nValueError: bad']
>>> j.flush()
['next']
"""

from __future__ import annotations

import glob
import logging
import re
import time
from pathlib import Path

from pydantic import Field, field_validator

from agents.collectors.base import Collector, CollectorConfig, Sample
from agents.logrecords import TRACEBACK as _TRACEBACK
from agents.logrecords import MultilineJoiner
from agents.logtail import FileTail, Offsets
from schemas.logs import MAX_LINE_CHARS, truncate_line

log = logging.getLogger("gpuwatch.agent.logfiles")

# The level words, case-insensitive, as whole words (\b on both sides), leftmost first. Written so the regex
# engine can jump between the ten possible first letters (a character-set scan in C) and only then check the
# word boundary before (no two word characters behind the letter) and the rest of the word: the same matches
# as ``\b(TRACE|DEBUG|...|PANIC)\b`` with IGNORECASE (İ and ı fold to I, hence their place), 2.4 times faster,
# which is most of what reading 1,000 log lines a second costs the agent.
_LEVEL = re.compile(r"[TDINWECFPtdinwecfp\u0130\u0131](?<!\w\w)(?:(?<=[Tt])(?i:RACE)|(?<=[Dd])(?i:EBUG)|"
                    r"(?<=[Ii\u0130\u0131])(?i:NFO)|(?<=[Nn])(?i:OTICE)|(?<=[Ww])(?i:ARN|ARNING)|(?<=[Ee])(?i:RROR)|"
                    r"(?<=[Cc])(?i:RITICAL)|(?<=[Ff])(?i:ATAL)|(?<=[Pp])(?i:ANIC))\b")
#: The level each spelling seen in practice stands for; any other spelling goes through upper().
_CANONICAL = {v: ("WARNING" if w == "WARN" else w) for w in ("TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING",
                                                           "ERROR", "CRITICAL", "FATAL", "PANIC")
              for v in (w, w.lower(), w.title())}


class LogFilesConfig(CollectorConfig):
    enabled: bool = False
    #: Files or globs to follow, e.g. ["/var/log/slurm/*.log", "/data/jobs/*/train.log"].
    paths: list[str] = Field(default_factory=list)
    #: A new record starts at a line matching this regex; other lines continue the previous one.
    #: Default: a line that does not start with whitespace starts a record (tracebacks handled specially).
    start_pattern: str | None = None
    #: Seconds to wait for more continuation lines before an open record is sent.
    multiline_timeout_s: float = Field(default=1.0, ge=0, le=60)
    #: Seconds between re-expanding globs to find new files.
    rescan_s: float = Field(default=10.0, gt=0)
    #: Largest read per file per scrape; the rest waits for the next scrape.
    max_read_bytes: int = Field(default=4 * 2**20, ge=4096)
    #: Labels added to every record from these files.
    labels: dict[str, str] = Field(default_factory=dict)
    #: These files' line format, when the pipeline's built-in recognition is wrong for them: a built-in
    #: format's name (syslog, slurm, nccl, java, python...) or a regex with named groups (msg required;
    #: ts, level, component, host optional). Sent with each record as the label ``log_format``.
    format: str | None = Field(default=None, max_length=256)

    @field_validator("start_pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"start_pattern is not a valid regular expression: {e}") from None
        return v

    @field_validator("format")
    @classmethod
    def _format(cls, v: str | None) -> str | None:
        if v is None or re.fullmatch(r"[a-z][a-z0-9_+]*", v):
            return v
        try:
            pattern = re.compile(v)
        except re.error as e:
            raise ValueError(f"format is neither a format name nor a valid regular expression: {e}") from None
        if "msg" not in pattern.groupindex:
            raise ValueError("a format regex needs a named group (?P<msg>...) for the message")
        return v

    @field_validator("paths")
    @classmethod
    def _absolute(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if not Path(p).is_absolute()]
        if bad:
            raise ValueError(f"log paths must be absolute (the agent's working directory is not yours): {bad}")
        return v


def level_of(text: str) -> str:
    """The record's level, from its first words; a traceback counts as ERROR.

    >>> level_of("2024-01-01 12:00:00 WARNING low memory"), level_of("plain")
    ('WARNING', '')
    """
    if _TRACEBACK in text:
        return "ERROR"
    m = _LEVEL.search(text, 0, 120)
    if not m:
        return ""
    word = m[0]
    return _CANONICAL.get(word) or _CANONICAL[word.upper()]


class LogFilesCollector(Collector):
    name = "logfiles"
    config_model = LogFilesConfig

    def __init__(self, config=None, context=None) -> None:
        super().__init__(config, context)
        self._tails: dict[str, FileTail] = {}
        self._joiners: dict[str, MultilineJoiner] = {}
        self._next_scan = 0.0
        self._offsets: Offsets | None = None
        self._first_scan = True
        self._last_save = 0.0
        self._stopping = False
        self._counts = {"lines": 0, "records": 0, "truncated": 0, "files": 0, "rotations": 0}

    def start(self) -> None:
        state_dir = self.context.state_dir
        if state_dir is not None:
            self._offsets = Offsets(Path(state_dir) / "logfiles-offsets.json")
        self._scan()

    def _scan(self) -> None:
        self._next_scan = time.monotonic() + self.config.rescan_s
        saved = self._offsets.data if self._offsets else {}
        for pattern in self.config.paths:
            for path in sorted(glob.glob(pattern)):
                if path in self._tails:
                    continue
                # Files present at first start begin at their end (no history flood) unless we
                # have an offset for them; files that appear later are read from the start.
                tail = FileTail(path, start_at_end=self._first_scan, saved=saved.get(path),
                                max_read_bytes=self.config.max_read_bytes)
                if tail.exists:
                    self._tails[path] = tail
                    self._joiners[path] = MultilineJoiner(self.config.start_pattern)
                    self._counts["files"] += 1
        self._first_scan = False

    def collect(self, now: float) -> list[Sample]:
        return []

    def logs(self, now: float) -> list[dict]:
        if time.monotonic() >= self._next_scan:
            self._scan()
        out: list[dict] = []
        timeout = self.config.multiline_timeout_s
        labels = dict(self.config.labels)
        if self.config.format:
            labels["log_format"] = self.config.format
        for path, tail in self._tails.items():
            joiner = self._joiners[path]
            lines = tail.read_lines()
            self._counts["lines"] += len(lines)
            texts = joiner.feed(lines)
            if self._stopping or time.monotonic() - joiner.last_line_at >= timeout:
                texts += joiner.flush()
            for text in texts:
                if len(text) > MAX_LINE_CHARS:
                    self._counts["truncated"] += 1
                    text = truncate_line(text)
                rec = {"ts": now, "message": text, "level": level_of(text), "source": path[-512:]}
                if labels:
                    rec["labels"] = labels
                out.append(rec)
        self._counts["records"] += len(out)
        if self._offsets is not None and time.monotonic() - self._last_save >= 5.0:
            self._save()
        return out

    def _save(self) -> None:
        self._last_save = time.monotonic()
        if self._offsets is not None:
            self._offsets.save({p: t.state() for p, t in self._tails.items() if t.state()})

    def stats(self) -> dict[str, int]:
        rotations = sum(t.rotations for t in self._tails.values())
        return {**self._counts, "rotations": rotations}

    def stopping(self) -> None:
        self._stopping = True

    def close(self) -> None:
        self._save()
        for t in self._tails.values():
            t.close()
