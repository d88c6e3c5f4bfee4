"""Log template mining: drain3 with our masks, a fast path, and persisted state.

Why the template id is a hash of the template text, not drain3's cluster id:
drain3 numbers clusters 1, 2, 3... in the order *one* miner meets them, so two
workers (or one worker whose state file was lost) give the same template
different numbers. A 64-bit hash of the masked template text is the same on
every worker, after every restart, and in the offline CLI, with no
coordination. The cost is that when drain3 generalises a template (``a x b``
becomes ``a <*> b``) later lines carry the new text's id; the templates table
keeps both texts, each with its own counts, and new-template alerts ignore
generalisations (see :attr:`MinedLine.change`).

Why state is still persisted: the hash makes an id *reproducible*, but only if
the miner groups lines the same way after a restart. The drain3 tree is saved
to a file (drain3's own jsonpickle snapshot, written atomically) and reloaded,
so a restarted worker keeps its clusters. A worker with no file (a new host
after a rebalance) can :meth:`TemplateMiner.seed` itself with the fleet's
templates from ClickHouse, so it lands lines on the templates the fleet
already knows.

Why a fast path: drain3 with our masking regexes costs ~20 µs a line, the
whole budget. Every mask treats the digits 1-9 alike (only ``0x`` singles out
a digit), so two lines that differ only in which non-zero digits they hold
mask to the same text; the cache key is the line's bytes with 2-9 turned into
``1`` (one C call), and a hit skips masking and drain3 entirely. A second
cache keyed by the masked text skips drain3 for lines that differ in hex or
UUIDs.

>>> m = TemplateMiner()
>>> a = m.mine("GPU 0 temperature 81 C on 0000:3b:00.0")
>>> b = m.mine("GPU 7 temperature 64 C on 0000:86:00.0")
>>> a.template_id == b.template_id, b.text
(True, 'GPU <NUM> temperature <NUM> C on <PCI>')
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Iterable, NamedTuple

import orjson
from drain3 import TemplateMiner as Drain3Miner
from drain3.masking import MaskingInstruction
from drain3.memory_buffer_persistence import MemoryBufferPersistence
from drain3.template_miner_config import TemplateMinerConfig

log = logging.getLogger(__name__)

#: Masks, applied in this order (drain3 applies them one after the other), as
#: (mask name, regex, a substring a match needs or "" when none). They are code,
#: not site configuration: changing one changes every template id. Every
#: pattern must treat the digits 1-9 alike (``\d``, ``\w``, ``[0-9a-f]``, a
#: literal ``0``; never ``[0-7]``): the fast path relies on it. The "needs" substring lets a
#: line skip a regex that cannot match it (the IP regexes cost ~4 us a line).
_H = "[0-9a-fA-F]{1,4}"
MASKS: tuple[tuple[str, str, str], ...] = (
    ("UUID", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "-"),
    ("PCI", r"\b(?:[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.\d)?|[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.\d)\b", ":"),
    ("IP", rf"(?<![\w:])(?:{_H}:){{7}}{_H}(?![\w:])", ":"),
    ("IP", rf"(?<![\w:])(?:{_H}(?::{_H})*)?::(?:{_H}(?::{_H})*)?(?![\w:])", "::"),
    ("IP", r"(?<![\w.:])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])", "."),
    ("PATH", r"(?<![\w/.~-])(?:~|\.{1,2})?/(?:[\w.@+-]+/)*[\w.@+-]+/?", "/"),
    ("HEX", r"\b0[xX][0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b", ""),
    ("NUM", r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", ""),
)


class GuardedMask(MaskingInstruction):
    """A drain3 masking instruction that skips lines lacking a substring every match needs."""

    def __init__(self, pattern: str, mask_with: str, needs: str = "") -> None:
        super().__init__(pattern, mask_with)
        self.needs = needs

    def mask(self, content: str, mask_prefix: str, mask_suffix: str) -> str:
        if self.needs and self.needs not in content:
            return content
        return super().mask(content, mask_prefix, mask_suffix)


#: Lines longer than this (in bytes) skip the fast-path caches: they are rare
#: and would make the caches large.
CACHE_MAX_LINE_BYTES = 512
_FOLD_DIGITS = bytes.maketrans(b"23456789", b"11111111")
STATE_FORMAT = 1


def template_id(text: str) -> int:
    """Stable UInt64 id of a template text (never 0, which means "no template").

    >>> template_id("GPU <NUM> fell off the bus") == template_id("GPU <NUM> fell off the bus")
    True
    """
    tid = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")
    return tid or 1


class MinedLine(NamedTuple):
    template_id: int
    text: str
    #: "none" (seen before), "created" (a new cluster) or "changed" (a cluster generalised to new text).
    change: str


class TemplateMiner:
    """drain3 mining with gpuwatch's masks, fast-path caches and a state file.

    ``state_path`` is where the drain3 tree is snapshotted; ``None`` keeps it
    in memory only (the offline CLI, tests). :meth:`checkpoint` writes it at
    most every ``snapshot_interval_s`` while something changed; call
    :meth:`close` on shutdown to write the last changes.
    """

    def __init__(self, state_path: Path | str | None = None, *, sim_th: float = 0.4, depth: int = 4,
                 snapshot_interval_s: float = 60.0, cache_entries: int = 200_000) -> None:
        config = TemplateMinerConfig()
        config.drain_sim_th = sim_th
        config.drain_depth = depth
        config.masking_instructions = [GuardedMask(p, name, needs) for name, p, needs in MASKS]
        config.snapshot_compress_state = True
        self._drain3 = Drain3Miner(persistence_handler=None, config=config)
        self.state_path = Path(state_path) if state_path is not None else None
        self.snapshot_interval_s = snapshot_interval_s
        self.cache_entries = cache_entries
        self._by_digits: dict[bytes, int] = {}
        self._by_masked: dict[str, int] = {}
        #: drain3 cluster id -> its current template, as returned for a line seen before.
        self._cluster_template: dict[int, MinedLine] = {}
        #: Event time of the first line this miner ever mined (kept across restarts).
        self.born_ts: float | None = None
        #: Lines mined over the miner's whole life (kept across restarts).
        self.lines_mined = 0
        #: The digit-folded cache key of the line last mined (``None`` for long lines). Two lines
        #: with one key differ only in their digits, so callers may cache digit-free decisions on it.
        self.last_line_key: bytes | None = None
        self._dirty = False
        self._last_save = time.monotonic()
        if self.state_path is not None:
            self._load()

    # -- mining ---------------------------------------------------------
    def mine(self, line: str, ts: float | None = None) -> MinedLine:
        """The template of one line; learns from it as drain3 does."""
        self.lines_mined += 1
        if self.born_ts is None and ts is not None:
            self.born_ts, self._dirty = ts, True
        key = line.encode("utf-8", "surrogatepass")
        if len(key) <= CACHE_MAX_LINE_BYTES:
            key = key.translate(_FOLD_DIGITS)
            cid = self._by_digits.get(key)
            if cid is not None:
                self.last_line_key = key
                return self._cluster_template[cid]
        else:
            key = None
        self.last_line_key = key
        masked = self._drain3.masker.mask(line)
        cid = self._by_masked.get(masked)
        if cid is not None:
            mined = self._cluster_template[cid]
        else:
            cluster, change_type = self._drain3.drain.add_log_message(masked)
            cid = cluster.cluster_id
            text = cluster.get_template()
            self._cluster_template[cid] = MinedLine(template_id(text), text, "none")
            change = {"cluster_created": "created", "cluster_template_changed": "changed"}.get(change_type, "none")
            if change != "none":
                self._dirty = True
            if len(masked) <= CACHE_MAX_LINE_BYTES:
                self._remember(self._by_masked, masked, cid)
            mined = self._cluster_template[cid]
            if change != "none":
                mined = mined._replace(change=change)
        if key is not None:
            self._remember(self._by_digits, key, cid)
        return mined

    def _remember(self, cache: dict, key, cid: int) -> None:
        if len(cache) >= self.cache_entries:
            cache.clear()  # cheap and rare; the next lines refill it
        cache[key] = cid

    def mask(self, line: str) -> str:
        """The line with numbers, hex, PCI addresses, UUIDs, paths and IPs masked."""
        return self._drain3.masker.mask(line)

    def seed(self, texts: Iterable[str]) -> int:
        """Teach the miner templates the fleet already knows (most general first).

        Returns how many formed new clusters. Seeded texts are already masked,
        so they go to drain3 unmasked; their ``<*>`` tokens act as wildcards.
        """
        created = 0
        for text in texts:
            cluster, change_type = self._drain3.drain.add_log_message(text)
            text = cluster.get_template()
            self._cluster_template[cluster.cluster_id] = MinedLine(template_id(text), text, "none")
            created += change_type == "cluster_created"
        if created:
            self._dirty = True
            self._by_masked.clear()
            self._by_digits.clear()
        return created

    def templates(self) -> dict[int, str]:
        """Current template id -> text, one per drain3 cluster."""
        out = {}
        for cluster in self._drain3.drain.clusters:
            text = cluster.get_template()
            out[template_id(text)] = text
        return out

    @property
    def cluster_count(self) -> int:
        return len(self._drain3.drain.id_to_cluster)

    # -- persistence ----------------------------------------------------
    def checkpoint(self, force: bool = False) -> bool:
        """Write the state file if something changed and the interval passed (or ``force``)."""
        if self.state_path is None or not (self._dirty or force):
            return False
        if not force and time.monotonic() - self._last_save < self.snapshot_interval_s:
            return False
        buf = MemoryBufferPersistence()
        self._drain3.persistence_handler = buf
        try:
            self._drain3.save_state("checkpoint")
        finally:
            self._drain3.persistence_handler = None
        payload = {"format": STATE_FORMAT, "born_ts": self.born_ts, "lines_mined": self.lines_mined,
                   "drain3": buf.state.decode("ascii")}
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(f"{self.state_path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps(payload))
        os.replace(tmp, self.state_path)
        self._dirty, self._last_save = False, time.monotonic()
        return True

    def close(self) -> None:
        if self._dirty:
            self.checkpoint(force=True)

    def _load(self) -> None:
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
            return
        try:
            payload = orjson.loads(raw)
            if payload.get("format") != STATE_FORMAT:
                raise ValueError(f"unknown state format {payload.get('format')!r}")
            buf = MemoryBufferPersistence()
            buf.state = payload["drain3"].encode("ascii")
            self._drain3.persistence_handler = buf
            try:
                self._drain3.load_state()
            finally:
                self._drain3.persistence_handler = None
        except Exception as e:  # a corrupt file must not stop the pipeline: start fresh, keep the file
            bad = self.state_path.with_name(self.state_path.name + ".corrupt")
            os.replace(self.state_path, bad)
            log.error("template miner state %s unreadable (%s); moved to %s and starting fresh",
                      self.state_path, e, bad)
            return
        self.born_ts = payload.get("born_ts")
        self.lines_mined = int(payload.get("lines_mined") or 0)
        for cluster in self._drain3.drain.clusters:
            text = cluster.get_template()
            self._cluster_template[cluster.cluster_id] = MinedLine(template_id(text), text, "none")
