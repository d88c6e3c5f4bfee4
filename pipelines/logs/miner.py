"""Log template mining: drain with whole-token masks, stable ids with lineage, a fast path, persisted state.

Why the template id is a hash of the template text, not drain's cluster id:
drain numbers clusters 1, 2, 3... in the order *one* miner meets them, so two
workers (or one worker whose state file was lost) give the same template
different numbers. A 53-bit hash of the masked template text is the same on
every worker, after every restart, and in the offline CLI, with no
coordination, and survives a JSON reader (ids stay below 2^53).

Why lineage: when drain generalises a template (``a x b`` becomes ``a <*> b``)
its text, and so its id, changes, while rows already stored carry the old id.
The miner records each such step (old id -> successor id) and keeps the map
flat (every ancestor points at the newest id), so :meth:`TemplateMiner.resolve`
turns any id it ever handed out into the id of the same event now; the
pipeline stores the map next to the templates, and grouping stored rows by the
resolved id equals grouping a second pass over the same lines.

Why similarity ignores masked tokens: a masked variable says nothing about
which event a line is, so drain's similarity is computed over the line's
other tokens only (:class:`MaskAwareDrain`), and a line's first two unmasked
words must match the template's. Masks are whole tokens (see
:mod:`pipelines.logs.masking`), and the parameters (similarity 0.7, depth 4,
two leading words) were chosen on the labelled corpus in ``bench/data``
(``bench/log_accuracy.py``; a sweep over similarity 0.5-0.9, depth 3-6 and
0-3 leading words).

Why state is persisted: the hash makes an id *reproducible*, but only if the
miner groups lines the same way after a restart. The clusters (id, size,
template) and the lineage are saved to a small versioned JSON file, written
atomically, and the tree is rebuilt from them. A worker with no file (a new
host after a rebalance) can :meth:`TemplateMiner.seed` itself with the fleet's
templates from ClickHouse.

Why a fast path: masking and drain cost ~10-20 us a line. Every mask treats
the digits alike, so two lines that differ only in their digits mask to the
same text; the cache key is the line's bytes with 1-9 turned into ``0`` (one C
call), and a hit skips masking and drain entirely. A second cache keyed by
the masked text skips drain for lines that differ in more than digits.

>>> m = TemplateMiner()
>>> a = m.mine("GPU 0 temperature 81 C on 0000:3b:00.0")
>>> b = m.mine("GPU 7 temperature 64 C on 0000:86:00.0")
>>> a.template_id == b.template_id, b.text
(True, 'GPU <*> temperature <*> C on <*>')
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Iterable, NamedTuple

import orjson
from drain3.drain import Drain, LogCluster

from pipelines.logs.masking import WILDCARD, mask

log = logging.getLogger(__name__)

#: Default clustering parameters, chosen on bench/data's labelled corpus (bench/log_accuracy.py).
DEFAULT_SIM_TH = 0.7
DEFAULT_DEPTH = 4
DEFAULT_LEAD_WORDS = 2
#: Lines longer than this (in bytes) skip the fast-path caches: they are rare
#: and would make the caches large.
CACHE_MAX_LINE_BYTES = 512
_FOLD_DIGITS = bytes.maketrans(b"123456789", b"000000000")
STATE_FORMAT = 2
#: Ids are below 2^53 so that JSON readers (JavaScript, jq) read them exactly.
ID_BITS = 53


def template_id(text: str) -> int:
    """Stable id of a template text, in 1 .. 2^53-1 (0 means "no template").

    >>> template_id("GPU <*> fell off the bus") == template_id("GPU <*> fell off the bus")
    True
    >>> template_id("GPU <*> fell off the bus") < 2 ** 53
    True
    """
    h = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")
    return (h >> (64 - ID_BITS)) or 1


class MaskAwareDrain(Drain):
    """drain, with similarity counted over the tokens the line did not mask, and a leading-words rule.

    drain3 counts a masked token as matching text when the template holds the
    same mask, so two unrelated lines of one length with many variables look
    alike. Here a position where the line holds ``<*>`` says nothing either way,
    and neither does an equal token holding a mask (``pid=<*>,`` is in every
    line a driver writes, whatever the event).

    ``lead_words``: the line's first that-many unmasked words must equal the
    template's words there (a template wildcard accepts anything). Events
    often differ in one early word among variables ("Failed password" /
    "Failed none", "Changing view acls" / "Changing modify acls"); drain's
    prefix tree only looks at the first raw tokens, masked ones included.
    """

    def __init__(self, *args, lead_words: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lead_words = lead_words

    def get_seq_distance(self, seq1, seq2, include_params: bool):
        param = self.param_str
        sim = params = known = 0
        lead = getattr(self, "lead_words", 0)
        for token1, token2 in zip(seq1, seq2):
            if token1 == param:
                params += 1
                if token2 == param:
                    continue
                known += 1
                lead -= 1
                if include_params:
                    sim += 1
                continue
            if token2 == param:
                continue
            if token1 == token2:
                if param in token1:  # "pid=<*>,": the key is there in every such line; no evidence
                    continue
                known += 1
                sim += 1
                lead -= 1
                continue
            known += 1
            if lead > 0:
                return 0.0, params
            lead -= 1
        if known == 0:
            return 1.0, params
        return sim / known, params


class MinedLine(NamedTuple):
    template_id: int
    text: str
    #: "none" (seen before), "created" (a new cluster) or "changed" (a cluster generalised to new text).
    change: str
    #: For "changed": the id this cluster had before (it now resolves to ``template_id``).
    previous: int = 0


def parse_state(raw: bytes) -> tuple[dict, list[tuple[int, int, str]], dict[int, list[int]]]:
    """A saved miner state: (payload, clusters as (id, size, template), ancestors). Raises on anything else,
    so a caller can tell a state file from someone's other file before writing over it."""
    payload = orjson.loads(raw)
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"not a template-miner state (format {found!r}, expected {STATE_FORMAT!r})")
    clusters = [(int(cid), int(size), str(text)) for cid, size, text in payload["clusters"]]
    ancestors = {int(k): [int(t) for t in v] for k, v in (payload.get("ancestors") or {}).items()}
    return payload, clusters, ancestors


class TemplateMiner:
    """drain mining with gpuwatch's masks, lineage, fast-path caches and a state file.

    ``state_path`` is where the clusters are snapshotted; ``None`` keeps them
    in memory only (the offline CLI, tests). :meth:`checkpoint` writes it at
    most every ``snapshot_interval_s`` while something changed; call
    :meth:`close` on shutdown to write the last changes. ``mine`` takes the
    *message* of a line: strip its header first (:mod:`pipelines.logs.headers`).
    """

    def __init__(self, state_path: Path | str | None = None, *, sim_th: float = DEFAULT_SIM_TH,
                 depth: int = DEFAULT_DEPTH, lead_words: int = DEFAULT_LEAD_WORDS, snapshot_interval_s: float = 60.0,
                 cache_entries: int = 200_000) -> None:
        self.sim_th, self.depth, self.lead_words = sim_th, depth, lead_words
        self._drain = MaskAwareDrain(sim_th=sim_th, depth=depth, param_str=WILDCARD, lead_words=lead_words)
        self.state_path = Path(state_path) if state_path is not None else None
        self.snapshot_interval_s = snapshot_interval_s
        self.cache_entries = cache_entries
        self._by_digits: dict[bytes, int] = {}
        self._by_masked: dict[str, int] = {}
        #: drain cluster id -> its current template, as returned for a line seen before.
        self._cluster_template: dict[int, MinedLine] = {}
        #: Every id a template ever had -> the id of its newest text (flat: no chains).
        self.lineage: dict[int, int] = {}
        #: drain cluster id -> the ids it had before its current one.
        self._ancestors: dict[int, list[int]] = {}
        #: After a "changed" line: every earlier id of that template (each now resolves to the new one).
        self.last_succession: list[int] = []
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
        """The template of one message; learns from it as drain does."""
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
        masked = mask(line)
        cid = self._by_masked.get(masked)
        if cid is not None:
            mined = self._cluster_template[cid]
        else:
            cluster, change_type = self._drain.add_log_message(masked)
            cid = cluster.cluster_id
            before = self._cluster_template.get(cid)
            text = cluster.get_template()
            tid = template_id(text)
            self._cluster_template[cid] = mined = MinedLine(tid, text, "none")
            if change_type == "cluster_created":
                mined = mined._replace(change="created")
                self._dirty = True
            elif before is not None and before.template_id != tid:
                mined = mined._replace(change="changed", previous=before.template_id)
                self._succeed(cid, before.template_id, tid)
                self._dirty = True
            if len(masked) <= CACHE_MAX_LINE_BYTES:
                self._remember(self._by_masked, masked, cid)
        if key is not None:
            self._remember(self._by_digits, key, cid)
        return mined

    def _succeed(self, cid: int, old: int, new: int) -> None:
        """Cluster ``cid`` changed id ``old`` -> ``new``: point every earlier id at ``new``."""
        ancestors = self._ancestors.setdefault(cid, [])
        if old not in ancestors:
            ancestors.append(old)
        ancestors[:] = [a for a in ancestors if a != new]
        for a in ancestors:
            self.lineage[a] = new
        self.lineage.pop(new, None)
        self.last_succession = list(ancestors)

    def resolve(self, tid: int) -> int:
        """The current id of the event a (possibly older) template id named."""
        return self.lineage.get(tid, tid)

    def _remember(self, cache: dict, key, cid: int) -> None:
        if len(cache) >= self.cache_entries:
            cache.clear()  # cheap and rare; the next lines refill it
        cache[key] = cid

    def mask(self, line: str) -> str:
        """The line with its variable tokens replaced by ``<*>``."""
        return mask(line)

    def seed(self, texts: Iterable[str]) -> int:
        """Teach the miner templates the fleet already knows (most general first).

        Returns how many formed new clusters. Seeded texts are already masked,
        so they go to drain unmasked; their ``<*>`` tokens act as wildcards.
        """
        created = 0
        for text in texts:
            cluster, change_type = self._drain.add_log_message(text)
            text = cluster.get_template()
            self._cluster_template[cluster.cluster_id] = MinedLine(template_id(text), text, "none")
            created += change_type == "cluster_created"
        if created:
            self._dirty = True
            self._by_masked.clear()
            self._by_digits.clear()
        return created

    def templates(self) -> dict[int, str]:
        """Current template id -> text, one per drain cluster."""
        out = {}
        for cluster in self._drain.clusters:
            text = cluster.get_template()
            out[template_id(text)] = text
        return out

    @property
    def clustering(self) -> tuple[float, int, int]:
        """(similarity, depth, lead words): miners with equal parameters group lines alike."""
        return (self.sim_th, self.depth, self.lead_words)

    @property
    def cluster_count(self) -> int:
        return len(self._drain.id_to_cluster)

    # -- persistence ----------------------------------------------------
    def checkpoint(self, force: bool = False) -> bool:
        """Write the state file if something changed and the interval passed (or ``force``)."""
        if self.state_path is None or not (self._dirty or force):
            return False
        if not force and time.monotonic() - self._last_save < self.snapshot_interval_s:
            return False
        clusters = [[c.cluster_id, c.size, c.get_template()] for c in self._drain.clusters]
        payload = {"format": STATE_FORMAT, "born_ts": self.born_ts, "lines_mined": self.lines_mined,
                   "sim_th": self.sim_th, "depth": self.depth, "clusters_counter": self._drain.clusters_counter,
                   "clusters": clusters, "ancestors": {str(k): v for k, v in self._ancestors.items()}}
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
            payload, clusters, ancestors = parse_state(raw)
        except Exception as e:  # a corrupt file must not stop the pipeline: start fresh, keep the file
            bad = self.state_path.with_name(self.state_path.name + ".corrupt")
            os.replace(self.state_path, bad)
            log.error("template miner state %s unreadable (%s); moved to %s and starting fresh",
                      self.state_path, e, bad)
            return
        drain = self._drain
        for cid, size, text in sorted(clusters):
            cluster = LogCluster(text.split(), cid)
            cluster.size = size
            drain.id_to_cluster[cid] = cluster
            drain.add_seq_to_prefix_tree(drain.root_node, cluster)
            self._cluster_template[cid] = MinedLine(template_id(text), text, "none")
        drain.clusters_counter = max([int(payload.get("clusters_counter") or 0)] + [c for c, _, _ in clusters])
        for cid, olds in ancestors.items():
            current = self._cluster_template.get(cid)
            if current is not None:
                self._ancestors[cid] = olds
                for old in olds:
                    self.lineage[old] = current.template_id
        self.born_ts = payload.get("born_ts")
        self.lines_mined = int(payload.get("lines_mined") or 0)
