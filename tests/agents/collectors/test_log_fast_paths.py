"""The log path's shortcuts (taken for CPU at 1,000 lines/s) give exactly what the plain rules give.

Each shortcut is compared with the straightforward version it replaced on many random inputs made of
the cases that matter: tracebacks, chained and native exceptions, journal entries, CRI and torchrun
prefixes, blank and indented lines, odd letter cases and Unicode that case-folds onto ASCII.
"""

from __future__ import annotations

import random
import re

from agents.collectors.logfiles import level_of
from agents.logrecords import MultilineJoiner
from agents.logtail import FileTail

#: The level rule as first written: whole words, any case, leftmost first.
_PLAIN_LEVEL = re.compile(r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|CRITICAL|FATAL|PANIC)\b", re.IGNORECASE)

_PIECES = ["INFO a", "  indented", "\tTab", "", "Traceback (most recent call last):", '  File "x.py", line 1',
           "ValueError: bad", "During handling of the above exception, another exception occurred:",
           "The above exception was the direct cause of the following exception:", "Caused by: java.lang.X",
           "Exception raised from foo at bar.cpp:1", "frame #3: bar", "Suppressed: y", "__CURSOR=s=1", "MESSAGE=hi",
           "[rank3]: ERROR boom", "[rank3]: Traceback (most recent call last):", "[default0]:x", "[2025-01-01] a",
           "2024-05-01T10:00:00.123Z stdout F hello", "2024-05-01T10:00:00Z stderr P ERROR x",
           "2024-05-01 10:00:00 INFO y", "ERROR step failed", "plain", "E1234 native", ":[x"]


def _per_line(joiner: MultilineJoiner) -> MultilineJoiner:
    joiner._all_plain = lambda lines: False  # force the line-by-line rules
    return joiner


def test_joining_a_batch_of_plain_lines_at_once_gives_the_line_by_line_records():
    rng = random.Random(1)
    for _ in range(5000):
        batches = [[rng.choice(_PIECES) if rng.random() < 0.3 else rng.choice(_PIECES[-4:])
                    for _ in range(rng.randint(0, 6))] for _ in range(rng.randint(1, 4))]
        fast, slow = MultilineJoiner(), _per_line(MultilineJoiner())
        got, want = [], []
        for batch in batches:
            got += fast.feed(list(batch))
            want += slow.feed(list(batch))
        assert got + fast.flush() == want + slow.flush(), batches
        fast, slow = MultilineJoiner(), _per_line(MultilineJoiner())
        n, got, want = 1, [], []
        for batch in batches:
            got += fast.feed_numbered(list(batch), n)
            want += slow.feed_numbered(list(batch), n)
            n += len(batch)
        assert got + fast.flush_numbered() == want + slow.flush_numbered(), batches


def test_level_is_the_leftmost_level_word_in_any_case_as_before():
    rng = random.Random(3)
    alphabet = list("TRACEDBUGINFOWLPtraceinfowarnerror _-:[]=.\u0130\u0131\u017fé1\n") + [
        "INFO", "warn", "Warning", "ERROR", "fatal", "Panic", "notice", "TRACE", "debug", "CRITICAL"]
    for _ in range(50_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        if rng.random() < 0.05:
            text = "x" * rng.randint(100, 125) + text  # the level must start within the first 120 characters
        m = _PLAIN_LEVEL.search(text, 0, 120)
        want = "" if m is None else ("WARNING" if m.group(1).upper() == "WARN" else m.group(1).upper())
        assert level_of(text) == ("ERROR" if "Traceback (most recent call last):" in text else want), text


def test_lines_decoded_in_one_piece_are_the_lines_decoded_one_by_one(tmp_path):
    rng = random.Random(5)
    pieces = [b"abc", b"\n", b"\r\n", b"\r\r\n", b"\xe2\x82", b"\xac", b"\xff", "é".encode(), b" x ", b"\n\n"]
    for i in range(300):
        path = tmp_path / f"{i}.log"
        path.write_bytes(b"")
        tail = FileTail(str(path), start_at_end=False)
        written, got = b"", []
        with open(path, "ab") as f:
            for _ in range(rng.randint(1, 5)):
                piece = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
                f.write(piece)
                f.flush()
                written += piece
                got += tail.read_lines()
        tail.close()
        complete = written[:written.rfind(b"\n") + 1]
        assert got == [ln.decode("utf-8", errors="replace").rstrip("\r") for ln in complete.split(b"\n")[:-1]]
