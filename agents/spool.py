"""A bounded, ordered, on-disk queue of Kafka messages that could not be sent.

While Kafka is unreachable the agent appends every message here; when it is
back the agent replays from the head, in order, and commits what the broker
acknowledged. Past ``max_bytes`` the *oldest* messages are dropped, counted and
logged, so a long outage costs the start of the outage, never the node's disk
or the most recent data.

Layout: numbered segment files of length-prefixed, CRC-checked records, plus a
``head`` file holding the (segment, offset) of the oldest unsent record. A torn
record at a segment's end (a crash mid-write) is skipped and counted.

>>> import tempfile
>>> s = Spool(tempfile.mkdtemp(), max_bytes=1 << 20)
>>> s.append("t", b"k", b"v1"); s.append("t", b"k", b"v2")
>>> records, token = s.peek(10)
>>> [r[2] for r in records]
[b'v1', b'v2']
>>> s.commit(token); s.messages
0
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("gpuwatch.agent.spool")

_HEADER = struct.Struct(">IHHI")  # value length, topic length, key length, crc32
Record = tuple[str, bytes, bytes]


@dataclass(frozen=True)
class Position:
    segment: int
    offset: int


class SpoolError(RuntimeError):
    """The spool directory cannot be used; says which and why."""


class Spool:
    def __init__(self, directory: str | os.PathLike, max_bytes: int = 512 * 2**20,
                 segment_bytes: int = 4 * 2**20) -> None:
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SpoolError(f"cannot create spool directory {self.dir}: {e}") from None
        if not os.access(self.dir, os.W_OK):
            raise SpoolError(f"spool directory {self.dir} is not writable by this user")
        self.max_bytes = max_bytes
        self.segment_bytes = min(segment_bytes, max(1024, max_bytes // 4))
        self.appended = 0
        self.dropped = 0
        self.corrupt = 0
        self._sizes: dict[int, int] = {}
        self._counts: dict[int, int] = {}
        self._fd: int | None = None
        self._tail = 0
        self._unreported = 0
        self._last_report = -1e9
        self._load()

    # -- state -----------------------------------------------------------------------------
    def _seg_path(self, n: int) -> Path:
        return self.dir / f"{n:012d}.seg"

    def _load(self) -> None:
        segs = sorted(int(p.stem) for p in self.dir.glob("*.seg") if p.stem.isdigit())
        head = self._read_head()
        if head is None or head.segment not in segs:
            head = Position(segs[0], 0) if segs else Position(1, 0)
        for n in segs:
            if n < head.segment:
                self._seg_path(n).unlink(missing_ok=True)
                continue
            self._sizes[n] = self._seg_path(n).stat().st_size
            start = head.offset if n == head.segment else 0
            self._counts[n] = sum(1 for _ in self._scan(n, start))
        self._head = head
        # Never append to a segment from an earlier run: its end may be a torn write.
        self._tail = max(self._sizes, default=head.segment - 1) + 1
        self._head = head if segs else Position(self._tail, 0)
        if self.messages:
            log.warning("spool %s holds %d unsent message(s) (%d bytes) from an earlier run; replaying them first",
                        self.dir, self.messages, self.bytes)

    def _read_head(self) -> Position | None:
        try:
            seg, off = (self.dir / "head").read_text().split()
            return Position(int(seg), int(off))
        except (OSError, ValueError):
            return None

    def _write_head(self) -> None:
        tmp = self.dir / "head.tmp"
        tmp.write_text(f"{self._head.segment} {self._head.offset}\n")
        os.replace(tmp, self.dir / "head")

    @property
    def messages(self) -> int:
        return sum(self._counts.values())

    @property
    def bytes(self) -> int:
        return sum(self._sizes.values()) - self._head.offset

    def __len__(self) -> int:
        return self.messages

    # -- writing ---------------------------------------------------------------------------
    def append(self, topic: str, key: bytes | str | None, value: bytes) -> None:
        k = key.encode() if isinstance(key, str) else (key or b"")
        t = topic.encode()
        rec = _HEADER.pack(len(value), len(t), len(k), zlib.crc32(t + k + value)) + t + k + value
        if self._fd is None or self._sizes[self._tail] >= self.segment_bytes:
            self._roll()
        os.write(self._fd, rec)
        self._sizes[self._tail] = self._sizes.get(self._tail, 0) + len(rec)
        self._counts[self._tail] = self._counts.get(self._tail, 0) + 1
        self.appended += 1
        if self.bytes > self.max_bytes:
            self._drop_oldest()

    def _roll(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._tail += 1
        self._fd = os.open(self._seg_path(self._tail), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._sizes.setdefault(self._tail, 0)
        self._counts.setdefault(self._tail, 0)

    def _drop_oldest(self) -> None:
        before = self.dropped
        while self.bytes > self.max_bytes and self.messages:
            seg = self._head.segment
            if self._counts.get(seg, 0) == 0 and seg != self._tail:
                self._remove_segment(seg)
                continue
            nxt = next(self._scan(seg, self._head.offset), None)
            if nxt is None:
                self._counts[seg] = 0
                continue
            self._head = nxt[1]
            self._counts[seg] -= 1
            self.dropped += 1
        self._write_head()
        self._unreported += self.dropped - before
        now = time.monotonic()
        if self._unreported and now - self._last_report >= 60.0:
            log.warning("spool is full (%d bytes): dropped the %d oldest unsent message(s); %d dropped since start",
                        self.max_bytes, self._unreported, self.dropped)
            self._unreported, self._last_report = 0, now

    def _remove_segment(self, seg: int) -> None:
        self._seg_path(seg).unlink(missing_ok=True)
        self._sizes.pop(seg, None)
        self._counts.pop(seg, None)
        nxt = min(self._sizes, default=self._tail)
        self._head = Position(nxt, 0)

    # -- reading ---------------------------------------------------------------------------
    def _scan(self, seg: int, offset: int):
        """Yield (record, position after it) from ``offset`` in segment ``seg``."""
        try:
            f = open(self._seg_path(seg), "rb")
        except OSError:
            return
        with f:
            f.seek(offset)
            pos = offset
            while True:
                head = f.read(_HEADER.size)
                if len(head) < _HEADER.size:
                    if head:
                        self.corrupt += 1
                    return
                vlen, tlen, klen, crc = _HEADER.unpack(head)
                body = f.read(tlen + klen + vlen)
                if len(body) < tlen + klen + vlen or zlib.crc32(body) != crc:
                    self.corrupt += 1
                    log.warning("spool segment %s has a torn or corrupt record at byte %d; skipping the rest",
                                self._seg_path(seg), pos)
                    return
                pos += _HEADER.size + len(body)
                yield (body[:tlen].decode(), body[tlen:tlen + klen], body[tlen + klen:]), Position(seg, pos)

    def peek(self, max_records: int = 500, max_bytes: int = 8 * 2**20) -> tuple[list[Record], Position]:
        """The oldest records, without removing them; pass the token to :meth:`commit` once sent."""
        out: list[Record] = []
        size = 0
        pos = self._head
        seg = pos.segment
        while len(out) < max_records and size < max_bytes and seg <= self._tail:
            if seg in self._sizes:
                offset = pos.offset if seg == pos.segment else 0
                for rec, after in self._scan(seg, offset):
                    out.append(rec)
                    size += len(rec[2])
                    pos = after
                    if len(out) >= max_records or size >= max_bytes:
                        break
                else:
                    if seg < self._tail:
                        pos = Position(seg + 1, 0)
            seg += 1
        return out, pos

    def commit(self, token: Position) -> None:
        """Forget every record before ``token`` (they reached Kafka)."""
        if (token.segment, token.offset) <= (self._head.segment, self._head.offset):
            return  # already passed (e.g. dropped for space while in flight)
        for seg in sorted(self._sizes):
            if seg < token.segment and seg != self._tail:
                self._seg_path(seg).unlink(missing_ok=True)
                self._sizes.pop(seg)
                self._counts.pop(seg)
        self._head = token
        if token.segment in self._sizes:
            self._counts[token.segment] = sum(1 for _ in self._scan(token.segment, token.offset))
        if self.messages == 0 and self._fd is not None:
            # Empty: start a fresh segment so the disk is given back.
            os.close(self._fd)
            self._fd = None
            for seg in list(self._sizes):
                self._seg_path(seg).unlink(missing_ok=True)
            self._sizes.clear()
            self._counts.clear()
            self._tail += 1
            self._head = Position(self._tail, 0)
        self._write_head()

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        self._write_head()
