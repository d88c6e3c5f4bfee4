"""Following one growing file across rotation, remembering where it got to.

:class:`FileTail` reads whatever was appended since the last call, in whole
lines. It notices the two ways logs rotate:

* **rename** (logrotate's default): the path now names a new inode. The old
  file is drained to its end through the still-open descriptor, then the new
  one is read from its start.
* **copytruncate**: the file got shorter than our offset. Reading restarts at 0.

:class:`Offsets` saves (device, inode, offset) per path so a restarted agent
resumes where it stopped; if the file was rotated while the agent was down,
the rotated file is found by its inode next to the path and drained first.

>>> import tempfile, os
>>> d = tempfile.mkdtemp(); p = os.path.join(d, "a.log")
>>> open(p, "w").write("one\\ntwo\\nthr")
11
>>> t = FileTail(p, start_at_end=False)
>>> t.read_lines()
['one', 'two']
>>> open(p, "a").write("ee\\n")
3
>>> t.read_lines()
['three']
"""

from __future__ import annotations

import glob
import json
import logging
import os
from pathlib import Path

log = logging.getLogger("gpuwatch.agent.logtail")


class FileTail:
    def __init__(self, path: str, *, start_at_end: bool = True, saved: dict | None = None,
                 max_read_bytes: int = 4 * 2**20) -> None:
        self.path = path
        self.max_read_bytes = max_read_bytes
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None
        self.offset = 0
        self._partial = b""
        self._old: list[tuple[int, int]] = []  # (fd, offset) of rotated files still being drained
        self.rotations = 0
        self._open(start_at_end, saved)

    def _open(self, start_at_end: bool, saved: dict | None = None) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        st = os.fstat(fd)
        self._fd, self._ino = fd, (st.st_dev, st.st_ino)
        if saved and (saved.get("dev"), saved.get("ino")) == self._ino and saved.get("offset", 0) <= st.st_size:
            self.offset = int(saved["offset"])
        elif saved:
            self._find_rotated(saved)
            self.offset = 0
        else:
            self.offset = st.st_size if start_at_end else 0

    def _find_rotated(self, saved: dict) -> None:
        """The file we were reading was rotated while we were down: drain it from the saved offset."""
        for cand in glob.glob(glob.escape(self.path) + "?*"):
            try:
                st = os.stat(cand)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (saved.get("dev"), saved.get("ino")) and st.st_size >= saved.get("offset", 0):
                fd = os.open(cand, os.O_RDONLY)
                self._old.append((fd, int(saved["offset"])))
                log.info("resuming %s from its rotated copy %s", self.path, cand)
                return

    def state(self) -> dict:
        if self._ino is None:
            return {}
        return {"dev": self._ino[0], "ino": self._ino[1], "offset": self.offset - len(self._partial)}

    def read_lines(self) -> list[str]:
        """Complete lines appended since the last call (a trailing partial line waits)."""
        self._check_rotation()
        chunks: list[bytes] = []
        budget = self.max_read_bytes
        while self._old and budget > 0:  # rotated files first: they hold the older lines
            fd, off = self._old[0]
            data = os.pread(fd, max(0, min(budget, os.fstat(fd).st_size - off)), off)
            budget -= len(data)
            if budget <= 0:
                self._old[0] = (fd, off + len(data))
                chunks.append(data)
                break
            os.close(fd)
            self._old.pop(0)
            self.rotations += 1
            tail = (self._partial if not chunks else chunks[-1]) + data
            chunks.append(data + (b"\n" if tail and not tail.endswith(b"\n") else b""))
        if budget > 0 and not self._old and self._fd is not None:
            size = os.fstat(self._fd).st_size
            if size < self.offset:  # copytruncate
                log.info("%s was truncated; reading it from the start", self.path)
                self.offset = 0
                self.rotations += 1
            # Ask only for what is there: pread allocates the full size asked for up front, and a 4 MiB
            # buffer per call (every scrape, and every 10 ms for a followed kernel log) costs both CPU
            # and resident memory that malloc keeps.
            want = min(budget, size - self.offset)
            data = os.pread(self._fd, want, self.offset) if want > 0 else b""
            self.offset += len(data)
            chunks.append(data)
        data = self._partial + b"".join(chunks)
        if not data:
            return []
        cut = data.rfind(b"\n")
        self._partial = data[cut + 1:]
        if cut < 0:
            return []
        # One decode for the whole read, then one split: a newline byte never sits inside a UTF-8
        # sequence, so this gives the lines a decode per line would, at half the cost.
        text = data[:cut].decode("utf-8", errors="replace")
        lines = text.split("\n")
        return [ln.rstrip("\r") for ln in lines] if "\r" in text else lines

    def _check_rotation(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            return  # gone for now (mid-rotation); keep reading the open file
        if self._fd is None:
            self._open(start_at_end=False)
        elif (st.st_dev, st.st_ino) != self._ino:
            self._old.append((self._fd, self.offset))
            self._fd = None
            self._open(start_at_end=False)

    @property
    def exists(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        for fd, _ in self._old:
            os.close(fd)
        self._old.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Offsets:
    """Read offsets per path, saved atomically as JSON in the agent's state directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, dict] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.data = {}

    def save(self, states: dict[str, dict]) -> None:
        if states == self.data:
            return
        self.data = dict(states)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)
