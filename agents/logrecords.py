"""Multi-line log records: which lines continue the record before them.

One event is sometimes written as many lines: a Python traceback (and its
chained exceptions), a Java stack trace (``\\tat ...``, ``Caused by: ...``), a
C++ exception dump from PyTorch or NCCL (``Exception raised from ...``,
``frame #3: ...``). Mined line by line, each frame becomes a template of its
own and the event that matters is lost among them; joined, the record is one
event. The agent's log tailing and the offline ``gpuwatch logs`` CLI use this
same module, so both see the same records. It is pure Python with no imports
from the pipeline.

An entry of ``journalctl -o export`` (``__CURSOR=...`` and its ``FIELD=value``
lines up to a blank line) is one record.
A traceback joins the line before it only when that line reads as an error
(``logger.exception`` writes it under one); otherwise it starts a record, and
so does a traceback right after another (a second failure), unless chained to
it ("During handling of the above exception ...").
Kubernetes CRI container logs prefix every physical line with
``<time> <stream> <F|P> ``, and torchrun prefixes each line of a rank's output
with ``[rank3]: ``; the rules apply to what follows the prefix, and a
continuation keeps only that part.

>>> j = MultilineJoiner()
>>> j.feed(["ERROR step failed", "Traceback (most recent call last):", '  File "t.py", line 1', "ValueError: bad", "next"])
['ERROR step failed\\nTraceback (most recent call last):\\n  File "t.py", line 1\\nValueError: bad']
>>> j.flush()
['next']
>>> [n for n, _ in join_records(["a", "  b", "", "c"])]
[1, 4]
"""

from __future__ import annotations

import re
import time
from typing import Iterable, Iterator

TRACEBACK = "Traceback (most recent call last):"
#: The first field of each entry of ``journalctl -o export``; an entry's fields follow, one a line.
JOURNAL_EXPORT_START = "__CURSOR="
_CHAIN = ("During handling of the above exception", "The above exception was the direct cause")
#: Lines that continue a record although they start at column 0.
_CONTINUATIONS = ("Caused by: ", "Exception raised from ", "frame #", "Suppressed: ")
_ERRORISH = re.compile(r"(?i)\b(?:error|critical|fatal|exception|failed|failure|traceback)\b|\bE\d{4} ")
#: Prefixes written in front of every physical line: Kubernetes CRI (``<time> <stream> <F|P> ``) and
#: torchrun's per-rank prefix (``[rank3]: ``, ``[default0]:``).
_CRI = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) (?:stdout|stderr) [FP] ")
_RANK = re.compile(r"\[(?:rank|default)\d+\]: ?")
#: A line that is, or may be, anything but a record of its own: a continuation (blank, indented, a
#: traceback's parts, a chained or native exception's lines), a prefixed line (CRI, torchrun) or a journal
#: entry's start. Matched after a newline, so the engine jumps from newline to newline; it may say "maybe"
#: (a ``[rank...`` line that turns out not to be one), which only sends the batch the careful way.
_NOT_PLAIN = re.compile(r"\n(?:[ \t\n]|\Z|Traceback|During handling|The above exception|Caused by: |"
                        r"Exception raised from |frame #|Suppressed: |__CURSOR=|\[(?:rank|default)\d|"
                        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")


class MultilineJoiner:
    """Groups lines into records. Lines stay open until a new record starts or :meth:`flush`.

    ``start_pattern``: a regex; when given, a line matching it starts a record
    and every other line continues the open one (the built-in rules are off).
    """

    def __init__(self, start_pattern: str | None = None) -> None:
        self._start = re.compile(start_pattern) if start_pattern else None
        self._lines: list[str] = []
        self._in_tb = False       # inside a traceback's frames
        self._tb_closed = False   # just saw a traceback's final exception line
        self._has_tb = False      # the open record holds a traceback already
        self._chained = False     # ... and "During handling of the above exception" after it
        self.last_line_at = 0.0

    def _continues(self, line: str, prefix: str = "") -> bool:
        if self._start is not None:
            return not self._start.search(line)
        if self._lines[0].startswith(JOURNAL_EXPORT_START):  # journalctl -o export: fields up to a blank line
            return bool(line) and not line.startswith(JOURNAL_EXPORT_START)
        if not line or line[0] in " \t":
            return True
        if line.startswith(TRACEBACK):
            # logger.exception() writes its traceback under an error line; an uncaught exception's
            # traceback on stderr follows whatever was logged last and starts a record of its own, as
            # does one another rank wrote, and one after a traceback (a second failure) unless chained.
            self._in_tb = True
            if self._has_tb:
                joins = self._chained
            else:
                joins = (not prefix or self._lines[0].startswith(prefix)) and bool(
                    _ERRORISH.search(self._lines[0], 0, 300))
            self._has_tb, self._chained = True, False
            return joins
        if self._tb_closed and line.startswith(_CHAIN):
            self._chained = True
            return True
        if self._in_tb:  # the exception line that ends a traceback
            self._in_tb = False
            self._tb_closed = True
            return True
        return line.startswith(_CONTINUATIONS)

    def feed(self, lines: list[str]) -> list[str]:
        """Records completed by these lines (the last one stays open)."""
        if self._all_plain(lines):
            out = [_join(self._lines)] if self._lines else []
            out += lines[:-1]
            self._open_last(lines, 1)
            return out
        return [text for _, text in self.feed_numbered(lines)]

    def _all_plain(self, lines: Iterable[str]) -> bool:
        """Does every line start a one-line record? The common case, told by one scan of the batch.

        Then no line continues another, whatever the open record is (unless it is a journal entry or an
        unfinished traceback), and per-line rules need not run: at 1,000 lines a second that is most of
        what reading logs costs the agent.
        """
        return (self._start is None and not self._in_tb and isinstance(lines, list) and bool(lines)
                and not (self._lines and self._lines[0].startswith(JOURNAL_EXPORT_START))
                and _NOT_PLAIN.search("\n" + "\n".join(lines)) is None)

    def _open_last(self, lines: list[str], first_number: int) -> None:
        self._lines, self._first = [lines[-1]], first_number + len(lines) - 1
        self._in_tb = self._tb_closed = False
        self.last_line_at = time.monotonic()

    def feed_numbered(self, lines: Iterable[str], first_number: int = 1) -> list[tuple[int, str]]:
        """Like :meth:`feed`, with each record's first line number (``first_number`` is the first line's)."""
        if self._all_plain(lines):
            out = [(self._first, _join(self._lines))] if self._lines else []
            out += zip(range(first_number, first_number + len(lines) - 1), lines[:-1])
            self._open_last(lines, first_number)
            return out
        out = []
        n = first_number - 1
        for n, line in enumerate(lines, first_number):
            body, prefix = line, ""
            if line[:1].isdigit() and (m := _CRI.match(line)):
                body = line[m.end():]
            elif line[:1] == "[" and (m := _RANK.match(line)) and not line.startswith(":[", m.end() - 1):
                body, prefix = line[m.end():], m.group()
            if self._lines and self._continues(body, prefix):
                self._lines.append(body)
                continue
            if self._lines:
                out.append((self._first, _join(self._lines)))
            self._lines, self._first = [line], n
            self._tb_closed = self._chained = False
            self._in_tb = self._has_tb = self._start is None and body.startswith(TRACEBACK)
        if n >= first_number:
            self.last_line_at = time.monotonic()
        return out

    def flush(self) -> list[str]:
        """The open record, if any (call when no more lines came for a while)."""
        return [text for _, text in self.flush_numbered()]

    def flush_numbered(self) -> list[tuple[int, str]]:
        if not self._lines:
            return []
        text = _join(self._lines)
        first = self._first
        self._lines = []
        self._in_tb = self._tb_closed = self._has_tb = self._chained = False
        return [(first, text)] if text.strip() else []


def _join(lines: list[str]) -> str:
    while len(lines) > 1 and not lines[-1].strip():
        lines = lines[:-1]
    return "\n".join(lines)


def join_records(lines: Iterable[str], start_pattern: str | None = None) -> Iterator[tuple[int, str]]:
    """(first line number, record) for each record of ``lines``, numbered from 1; blank records skipped."""
    joiner = MultilineJoiner(start_pattern)
    batch: list[str] = []
    number = 1
    for line in lines:
        batch.append(line)
        if len(batch) >= 1024:
            for rec in joiner.feed_numbered(batch, number):
                if rec[1].strip():
                    yield rec
            number += len(batch)
            batch = []
    for rec in joiner.feed_numbered(batch, number):
        if rec[1].strip():
            yield rec
    yield from joiner.flush_numbered()


__all__ = ["JOURNAL_EXPORT_START", "MultilineJoiner", "TRACEBACK", "join_records"]
