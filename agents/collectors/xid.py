"""XID and SXID collector: NVIDIA driver errors from kernel messages, published as node events.

Sources, in the order ``auto`` tries them:

* ``kmsg``: ``/dev/kmsg``, read without blocking. Each record carries a
  sequence number; the last one seen is saved (per boot) so a restarted agent
  neither repeats nor misses an XID.
* ``journal``: ``journalctl -k --follow`` where only the journal has kernel
  messages (containers without /dev/kmsg); ``--cursor-file`` resumes it.
* a file path (``/var/log/kern.log``), followed like any log file, or a
  named pipe (FIFO) that something writes kernel lines into.

**Events are pushed, not polled.** With ``push`` on (the default) a reader
thread sleeps until the source has data (``poll()`` on /dev/kmsg, the
journalctl pipe or a FIFO; a plain file is checked every ``file_poll_s``) and
hands each XID to the agent at once, which publishes it and flushes the
producer, so an XID does not wait for the next scrape tick.

Each XID becomes one ``NodeEvent`` (never a gauge) with the GPU it names (the
PCI address mapped through NVML's inventory), and the catalog's meaning,
severity and recommended action from ``schemas.xid``. A flood of one code on
one GPU (XID 13 can log hundreds of lines for one fault) is capped per scrape
and the rest counted in the last event's message.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import select
import shutil
import stat
import subprocess
import threading
import time
from typing import Callable
from pathlib import Path

from pydantic import Field

from agents.collectors.base import Collector, CollectorConfig, Sample
from agents.logtail import FileTail
from schemas.base import MAX_AGE_S
from schemas.xid import classify, parse_kernel_line

log = logging.getLogger("gpuwatch.agent.xid")


class XidConfig(CollectorConfig):
    #: "auto", "kmsg", "journal", or the path of a kernel log file.
    source: str = "auto"
    kmsg_path: Path = Path("/dev/kmsg")
    #: Report XIDs already in the kernel ring buffer at the first start (since boot).
    from_boot: bool = True
    #: Events per (GPU, code) per scrape; more are counted, not sent one by one.
    max_events_per_code: int = Field(default=10, ge=1, le=10_000)
    #: Publish each XID the moment it is read (a reader thread) rather than at the next scrape.
    push: bool = True
    #: In push mode, how often a plain kernel-log *file* is checked (kmsg, journal and FIFOs wake the reader).
    file_poll_s: float = Field(default=0.01, gt=0, le=10)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class _KmsgReader:
    """Non-blocking /dev/kmsg reader; yields (epoch ts, message) for new records."""

    def __init__(self, path: Path, state_file: Path | None, from_boot: bool) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.state_file = state_file
        self.boot = _boot_id()
        self.last_seq = -1
        saved = {}
        if state_file is not None:
            try:
                saved = json.loads(state_file.read_text())
            except (OSError, ValueError):
                saved = {}
        if saved.get("boot") == self.boot:
            self.last_seq = int(saved.get("seq", -1))
        elif not from_boot:
            os.lseek(self.fd, 0, os.SEEK_END)
        self._saved_seq = self.last_seq
        self._last_save = time.monotonic()

    def read(self, max_records: int = 10_000) -> list[tuple[float, str]]:
        out: list[tuple[float, str]] = []
        wall_minus_mono = time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)
        for _ in range(max_records):
            try:
                chunk = os.read(self.fd, 16384)
            except BlockingIOError:
                break
            except BrokenPipeError:  # the ring buffer overwrote records we had not read
                log.warning("kernel ring buffer overran; some kernel messages were missed")
                continue
            if not chunk:
                break
            for rec in chunk.decode("utf-8", errors="replace").split("\n"):
                if not rec or rec[0] == " ":
                    continue  # kmsg continuation (KEY=value) lines
                head, sep, msg = rec.partition(";")
                if not sep:
                    out.append((time.time(), rec))
                    continue
                parts = head.split(",")
                try:
                    seq, usec = int(parts[1]), int(parts[2])
                except (IndexError, ValueError):
                    out.append((time.time(), msg))
                    continue
                if seq <= self.last_seq:
                    continue
                self.last_seq = seq
                out.append((wall_minus_mono + usec / 1e6, msg))
        self._maybe_save()
        return out

    def fileno(self) -> int | None:
        return self.fd

    def _maybe_save(self, force: bool = False) -> None:
        if self.state_file is None or self.last_seq == self._saved_seq:
            return
        if force or time.monotonic() - self._last_save >= 5.0:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"boot": self.boot, "seq": self.last_seq}))
            os.replace(tmp, self.state_file)
            self._saved_seq, self._last_save = self.last_seq, time.monotonic()

    def close(self) -> None:
        self._maybe_save(force=True)
        os.close(self.fd)


class _JournalReader:
    """``journalctl -k --follow -o short-unix`` as a child process, read without blocking."""

    def __init__(self, cursor_file: Path | None, from_boot: bool) -> None:
        cmd = ["journalctl", "-k", "--follow", "--no-pager", "-o", "short-unix", "-b",
               "-n", "all" if from_boot else "0"]
        if cursor_file is not None:
            cursor_file.parent.mkdir(parents=True, exist_ok=True)
            cmd.append(f"--cursor-file={cursor_file}")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        fd = self.proc.stdout.fileno()
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self._partial = b""

    def read(self, max_bytes: int = 4 * 2**20) -> list[tuple[float, str]]:
        if self.proc.poll() is not None:
            raise RuntimeError(f"journalctl exited with code {self.proc.returncode}")
        data = b""
        try:
            while len(data) < max_bytes:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                data += chunk
        except BlockingIOError:
            pass
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        out = []
        for raw in lines:
            line = raw.decode("utf-8", errors="replace")
            ts_s, _, rest = line.partition(" ")
            try:
                out.append((float(ts_s), rest))
            except ValueError:
                out.append((time.time(), line))
        return out

    def fileno(self) -> int | None:
        return self.proc.stdout.fileno()

    def close(self) -> None:
        self.proc.terminate()  # journalctl writes its cursor file as it exits
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class _FileReader:
    def __init__(self, path: str, from_boot: bool) -> None:
        self.tail = FileTail(path, start_at_end=not from_boot)

    def read(self) -> list[tuple[float, str]]:
        now = time.time()
        return [(now, line) for line in self.tail.read_lines()]

    def fileno(self) -> int | None:
        return None  # a regular file is always "readable": it is checked on a timer instead

    def close(self) -> None:
        self.tail.close()


class _PipeReader:
    """A named pipe of kernel lines. We hold a write end too, so a writer closing never reads as EOF."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._keepalive = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        self._partial = b""

    def read(self) -> list[tuple[float, str]]:
        data = b""
        try:
            while len(data) < 4 * 2**20:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                data += chunk
        except BlockingIOError:
            pass
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        now = time.time()
        return [(now, ln.decode("utf-8", errors="replace")) for ln in lines]

    def fileno(self) -> int | None:
        return self.fd

    def close(self) -> None:
        os.close(self.fd)
        os.close(self._keepalive)


class XidCollector(Collector):
    name = "xid"
    config_model = XidConfig

    def __init__(self, config=None, context=None) -> None:
        super().__init__(config, context)
        self._reader = None
        self._events: list[dict] = []
        self._counts = {"lines": 0, "xids": 0, "sxids": 0, "suppressed": 0}
        self.source = ""
        self._follower: threading.Thread | None = None
        self._stop = threading.Event()
        self._follow_error: Exception | None = None

    def start(self) -> None:
        cfg = self.config
        state = Path(self.context.state_dir) if self.context.state_dir else None
        src = cfg.source
        if src == "auto":
            if os.access(cfg.kmsg_path, os.R_OK):
                src = "kmsg"
            elif shutil.which("journalctl"):
                src = "journal"
            else:
                raise RuntimeError(f"no kernel message source: {cfg.kmsg_path} is not readable and journalctl "
                                   "is not installed; set collectors.xid.source to a kernel log file")
        if src == "kmsg":
            self._reader = _KmsgReader(cfg.kmsg_path, state / "xid-kmsg.json" if state else None, cfg.from_boot)
        elif src == "journal":
            self._reader = _JournalReader(state / "xid-journal.cursor" if state else None, cfg.from_boot)
        elif _is_fifo(src):
            self._reader = _PipeReader(src)
        else:
            if not os.path.exists(src):  # followed once it appears, but a typo would mean no XIDs, ever
                log.warning("XID source %s does not exist (yet): no XIDs are read until it does; check "
                            "collectors.xid.source", src)
            self._reader = _FileReader(src, cfg.from_boot)
        self.source = src
        log.info("reading XIDs from %s", src)

    def start_push(self, emit: Callable[[dict], None]) -> bool:
        """Hand each event to ``emit`` as soon as it is read, from a reader thread; False if push is off."""
        if not self.config.push or self._reader is None or self._follower is not None:
            return False
        self._follower = threading.Thread(target=self._follow, args=(emit,), name="xid-follow", daemon=True)
        self._follower.start()
        return True

    def _follow(self, emit: Callable[[dict], None]) -> None:
        fd = self._reader.fileno()
        poller = None
        if fd is not None:
            poller = select.poll()
            poller.register(fd, select.POLLIN | select.POLLPRI)
        while not self._stop.is_set():
            if poller is not None and not poller.poll(500):
                continue  # nothing yet; wake twice a second to notice a stop
            try:
                events = self._read_events()
            except Exception as e:  # noqa: BLE001 - reported through collect(); retried
                self._follow_error = e
                self._stop.wait(1.0)
                continue
            for ev in events:
                try:
                    emit(ev)
                except Exception:  # noqa: BLE001 - the reader thread must outlive one bad send
                    log.exception("publishing an XID event failed")
            if poller is None:
                self._stop.wait(self.config.file_poll_s)

    def collect(self, now: float) -> list[Sample]:
        if self._follower is not None:
            err, self._follow_error = self._follow_error, None
            if err is not None:
                raise err  # marks the collector unhealthy in the heartbeat
            return []
        if self._reader is None:
            return []
        self._events.extend(self._read_events())
        return []

    def _read_events(self) -> list[dict]:
        """Parse what the source has now into events, capping a flood of one code per read."""
        oldest = time.time() - MAX_AGE_S + 3600
        per_key: dict[tuple, list[dict]] = {}
        for ts, line in self._reader.read():
            self._counts["lines"] += 1
            parsed = parse_kernel_line(line)
            if parsed is None:
                continue
            self._counts["sxids" if parsed.source == "sxid" else "xids"] += 1
            key = (parsed.pci_bus_id, parsed.source, parsed.code)
            bucket = per_key.setdefault(key, [])
            if len(bucket) >= self.config.max_events_per_code:
                self._counts["suppressed"] += 1
                bucket[-1]["_more"] = bucket[-1].get("_more", 0) + 1
                continue
            bucket.append(self._event(parsed, line, min(max(ts, oldest), time.time())))
        out = []
        for bucket in per_key.values():
            for ev in bucket:
                more = ev.pop("_more", 0)
                if more:
                    ev["message"] = (ev["message"] + f" (+{more} more like this)")[:4096]
                out.append(ev)
        return out

    def _event(self, parsed, line: str, ts: float) -> dict:
        info = classify(parsed)
        gpu = self.context.gpu_by_pci(parsed.pci_bus_id)
        labels = {}
        if gpu is not None:
            labels["uuid"] = gpu.uuid
        if parsed.pid is not None:
            labels["pid"] = str(parsed.pid)
        kind = "SXID" if parsed.source == "sxid" else "XID"
        if info is not None:
            labels["xid_name"] = info.name
            if info.investigate:
                labels["investigate"] = info.investigate[:256]
        text = line[line.find("NVRM:"):] if "NVRM:" in line else line.strip()
        return {
            "v": 1, "kind": "event", "node": self.context.node, "ts": ts, "source": parsed.source,
            "code": parsed.code, "gpu": gpu.index if gpu is not None else -1, "pci_bus_id": parsed.pci_bus_id,
            "severity": info.severity if info else "info", "action": info.action if info else "none",
            "title": (f"{kind} {parsed.code}: {info.meaning}" if info else f"{kind} {parsed.code}")[:256],
            "message": text[:4096], "labels": labels,
        }

    def events(self, now: float) -> list[dict]:
        ev, self._events = self._events, []
        return ev

    def stats(self) -> dict[str, int]:
        return dict(self._counts)

    def close(self) -> None:
        self._stop.set()
        if self._follower is not None:
            self._follower.join(2.0)
        if self._reader is not None:
            self._reader.close()


def _is_fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False
