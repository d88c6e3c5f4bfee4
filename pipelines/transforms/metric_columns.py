"""Decode many metric messages at once into columns, checked a column at a time.

A sample is too small to be a Python object: building and validating a pydantic
model per sample cost a quarter of the pipeline's time. This decodes a whole
poll of Kafka messages into one :class:`MetricColumns` (numpy arrays for numbers,
Python lists for the few string columns that become Arrow dictionaries), and
checks the contract of :class:`schemas.metrics.MetricBatch` column-wise:
types by set of types, ranges and finiteness with numpy, names against a cache
of names already seen valid.

A message that any check rejects is decoded again through the strict model,
so its dead-letter reason is exactly the one :func:`schemas.codec.decode`
gives, and a message the fast checks were too cautious about is still kept.
Per-sample Python therefore runs only at the edge, for bad input.

>>> import time, orjson
>>> now = time.time()
>>> good = orjson.dumps({"node": "n1", "ts": now, "samples": [
...     {"gpu": 0, "metric": "gpu_util", "value": 97.0}, {"gpu": 1, "metric": "gpu_util", "value": 12}]})
>>> bad = orjson.dumps({"node": "n1", "ts": now, "samples": [{"gpu": 0, "metric": "gpu_util", "value": "hot"}]})
>>> cols, rejected = decode_metric_messages([(good, 0, 10), (bad, 0, 11)])
>>> len(cols), cols.value.tolist(), [(r.offset, r.reason.split(":")[0]) for r in rejected]
(2, [97.0, 12.0], [(11, 'MetricBatch invalid')])
"""

from __future__ import annotations

import re
import time
from sys import intern
from itertools import chain
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import orjson

from schemas.base import MAX_AGE_S, MAX_FUTURE_SKEW_S
from schemas.codec import MAX_PAYLOAD_BYTES, SchemaError, decode
from schemas.metrics import MetricBatch

_NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$")
_METRIC = re.compile(r"^[A-Za-z_][A-Za-z0-9_:.]{0,127}$")
_LABEL_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_NUMBER = {float, int}
_MAX_SAMPLES = 20_000


@dataclass(frozen=True)
class Rejected:
    """A message refused whole, with the reason that goes to the dead-letter topic."""

    value: bytes | None
    partition: int
    offset: int
    reason: str


@dataclass
class MetricColumns:
    """Samples of many batches, one array per column, in arrival order.

    ``batch`` numbers each sample's message (0..n_batches-1); the per-batch
    arrays (``batch_node``, ``batch_ts``, ``batch_partition``, ``batch_offset``)
    say where and when each message came from.
    """

    ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    gpu: np.ndarray = field(default_factory=lambda: np.empty(0, np.int16))
    value: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    batch: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    node: list[str] = field(default_factory=list)
    uuid: list[str] = field(default_factory=list)
    metric: list[str] = field(default_factory=list)
    unit: list[str] = field(default_factory=list)
    labels: list[dict[str, str]] = field(default_factory=list)
    batch_node: list[str] = field(default_factory=list)
    batch_ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    batch_partition: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    batch_offset: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    #: batch number -> each sample's own labels, only for batches that also carry batch-level
    #: labels (``labels`` holds both merged, as stored; detectors judge a sample by its own)
    own_labels: dict[int, list[dict[str, str]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.value)

    @classmethod
    def concat(cls, parts: list["MetricColumns"]) -> "MetricColumns":
        return concat_columns(parts)

    @property
    def src_partition(self) -> np.ndarray:
        return self.batch_partition[self.batch]

    @property
    def src_offset(self) -> np.ndarray:
        return self.batch_offset[self.batch]

    def to_arrow(self):
        """The ``metrics_raw`` columns as an Arrow table, for ``insert_arrow``."""
        import pyarrow as pa

        nodes, node_code = np.unique(np.asarray(self.batch_node, dtype=object), return_inverse=True)
        return pa.table({
            "ts": pa.array(np.round(self.ts * 1000).astype(np.int64), pa.timestamp("ms", tz="UTC")),
            "node": pa.DictionaryArray.from_arrays(pa.array(node_code[self.batch].astype(np.int32)),
                                                   pa.array(nodes.tolist(), pa.string())),
            "gpu": pa.array(self.gpu, pa.int16()),
            "uuid": pa.array(self.uuid, pa.string()).dictionary_encode(),
            "metric": pa.array(self.metric, pa.string()).dictionary_encode(),
            "value": pa.array(self.value, pa.float64()),
            "unit": pa.array(self.unit, pa.string()).dictionary_encode(),
            "labels": _labels_array(self.labels),
            "src_partition": pa.array(self.src_partition.astype(np.uint16), pa.uint16()),
            "src_offset": pa.array(self.src_offset.astype(np.uint64), pa.uint64()),
        })


def concat_columns(parts: list[MetricColumns]) -> MetricColumns:
    """Many column batches as one (what the sink inserts at a flush), batches renumbered in order.

    >>> import time, orjson
    >>> msg = lambda node: orjson.dumps({"node": node, "ts": time.time(), "samples": [
    ...     {"gpu": 0, "metric": "gpu_util", "value": 1.0}]})
    >>> a, _ = decode_metric_messages([(msg("n1"), 0, 5)])
    >>> b, _ = decode_metric_messages([(msg("n2"), 1, 7)])
    >>> both = concat_columns([a, b])
    >>> both.node, both.src_offset.tolist(), both.src_partition.tolist()
    (['n1', 'n2'], [5, 7], [0, 1])
    """
    if len(parts) == 1:
        return parts[0]
    out = MetricColumns()
    shift = np.cumsum([0] + [len(p.batch_node) for p in parts[:-1]])
    out.ts = np.concatenate([p.ts for p in parts])
    out.gpu = np.concatenate([p.gpu for p in parts])
    out.value = np.concatenate([p.value for p in parts])
    out.batch = np.concatenate([p.batch + np.int32(k) for p, k in zip(parts, shift)]).astype(np.int32)
    out.batch_ts = np.concatenate([p.batch_ts for p in parts])
    out.batch_partition = np.concatenate([p.batch_partition for p in parts])
    out.batch_offset = np.concatenate([p.batch_offset for p in parts])
    for p in parts:
        out.node += p.node
        out.uuid += p.uuid
        out.metric += p.metric
        out.unit += p.unit
        out.labels += p.labels
        out.batch_node += p.batch_node
    return out


class BatchRows(Sequence):
    """One batch's samples as the row tuples pages read (``(ts, node, gpu, uuid, metric, value, unit,
    labels, partition, offset)``), built only when read: a page is rare, a batch is not."""

    def __init__(self, cols: MetricColumns) -> None:
        self._cols = cols

    def __len__(self) -> int:
        return len(self._cols)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return list(self)[i]
        c = self._cols
        b = int(c.batch[i])
        return (float(c.ts[i]), c.node[i], int(c.gpu[i]), c.uuid[i], c.metric[i], float(c.value[i]), c.unit[i],
                c.labels[i], int(c.batch_partition[b]), int(c.batch_offset[b]))

    def __iter__(self):
        c = self._cols
        part, off = c.batch_partition[c.batch].tolist(), c.batch_offset[c.batch].tolist()
        return iter(zip(c.ts.tolist(), c.node, c.gpu.tolist(), c.uuid, c.metric, c.value.tolist(), c.unit,
                        c.labels, part, off))


def _labels_array(labels: list[dict[str, str]]):
    """A Map(String, String) column: each distinct label dict object built once, then taken per row.

    Decoded samples share one dict per label set (:func:`_shared_labels`), so a flush of 200k rows holds a
    few hundred objects: encoding every row's keys and values was 60 % of the Arrow build (issue 10).
    The objects are alive for the call, so their ids tell them apart."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = np.fromiter(map(id, labels), np.int64, count=len(labels))
    distinct, first, rows = np.unique(ids, return_index=True, return_inverse=True)
    if len(distinct) * 4 > len(labels):  # hardly shared (a hostile stream): row by row is cheaper
        return _labels_rows(labels)
    return pc.take(_labels_rows([labels[i] for i in first.tolist()]), pa.array(rows.astype(np.int32)))


def _labels_rows(labels: list[dict[str, str]]):
    """A Map(String, String) column from offsets and flat keys and values, not a tuple per label."""
    import pyarrow as pa

    sizes = np.fromiter(map(len, labels), np.int32, count=len(labels))
    offsets = np.zeros(len(labels) + 1, np.int32)
    np.cumsum(sizes, out=offsets[1:])
    keys = pa.array(list(chain.from_iterable(labels)), pa.string())
    values = pa.array(list(chain.from_iterable(map(dict.values, labels))), pa.string())
    return pa.MapArray.from_arrays(pa.array(offsets), keys, values)


class _Builder:
    """Collects column pieces message by message; concatenates once at the end."""

    def __init__(self) -> None:
        self.ts: list[np.ndarray] = []
        self.gpu: list[np.ndarray] = []
        self.value: list[np.ndarray] = []
        self.counts: list[int] = []
        self.cols = MetricColumns()
        self.batch_ts: list[float] = []
        self.batch_partition: list[int] = []
        self.batch_offset: list[int] = []

    def add(self, node: str, bts: float, partition: int, offset: int, ts: np.ndarray, gpu: np.ndarray,
            value: np.ndarray, uuid: list, metric: list, unit: list, labels: list) -> None:
        c = self.cols
        c.batch_node.append(node)
        self.batch_ts.append(bts)
        self.batch_partition.append(partition)
        self.batch_offset.append(offset)
        self.ts.append(ts)
        self.gpu.append(gpu)
        self.value.append(value)
        self.counts.append(len(value))
        c.node.extend([node] * len(value))
        c.uuid.extend(uuid)
        c.metric.extend(metric)
        c.unit.extend(unit)
        c.labels.extend(labels)

    def build(self) -> MetricColumns:
        c = self.cols
        if len(self.counts) == 1:  # a worker's usual poll: one message, nothing to join
            c.ts, c.value = self.ts[0], self.value[0].astype(np.float64, copy=False)
            c.gpu = self.gpu[0].astype(np.int16)
            c.batch = np.zeros(self.counts[0], np.int32)
        elif self.counts:
            c.ts = np.concatenate(self.ts)
            c.gpu = np.concatenate(self.gpu).astype(np.int16, copy=False)
            c.value = np.concatenate(self.value).astype(np.float64, copy=False)
            c.batch = np.repeat(np.arange(len(self.counts), dtype=np.int32), self.counts)
        c.batch_ts = np.asarray(self.batch_ts, np.float64)
        c.batch_partition = np.asarray(self.batch_partition, np.int32)
        c.batch_offset = np.asarray(self.batch_offset, np.int64)
        return c


class _Checks:
    """Name caches shared across calls: a name valid once is valid forever."""

    def __init__(self) -> None:
        self.nodes: set[str] = set()
        self.metrics: set[str] = set()
        self.label_keys: set[str] = set()

    def node_ok(self, node) -> bool:
        if node in self.nodes:
            return True
        if type(node) is str and _NODE.match(node):
            self.nodes.add(node)
            return True
        return False

    def metrics_ok(self, names: list) -> bool:
        new = set(names) - self.metrics if all(type(n) is str for n in names) else None
        if new is None:
            return False
        if all(_METRIC.match(n) for n in new):
            self.metrics |= new
            return True
        return False


    def labels_ok(self, labels: list) -> bool:
        """Every sample's labels a dict of at most 32 valid keys to strings of at most 256 characters."""
        if not any(labels):
            return all(type(d) is dict for d in labels)
        if set(map(type, labels)) != {dict} or max(map(len, labels)) > 32:
            return False
        new = set().union(*labels) - self.label_keys
        if new:
            if not all(type(k) is str and _LABEL_KEY.match(k) for k in new):
                return False
            self.label_keys |= new
        values = list(chain.from_iterable(map(dict.values, labels)))
        return set(map(type, values)) <= {str} and max(map(len, values), default=0) <= 256


_CHECKS = _Checks()
_NO_LABELS: dict = {}
_START = object()  # precedes the first label set (equal to none)
#: node -> (gpus, metric names, uuids, units) of its last batch that passed every check and has no series
#: twice: a batch laid out alike needs only its values and labels checked (issue 10). Names are interned.
_LAYOUTS: dict[str, tuple[list, list, list, list]] = {}
#: Layouts kept at most: ~6 KB each for a node of 8 GPUs, so at most ~60 MB (a worker owns a few thousand nodes).
LAYOUTS_KEPT = 10_000
#: label items -> the one dict that stands for them (:func:`_shared_labels`)
_LABELS_MEMO: dict[tuple, dict] = {}


def _label_key(labels: dict) -> tuple:
    return tuple(sorted(labels.items())) if labels else ()


def decode_metric_messages(messages: Iterable[tuple[bytes | None, int, int]], *, max_bytes: int = MAX_PAYLOAD_BYTES,
                           now: float | None = None) -> tuple[MetricColumns, list[Rejected]]:
    """Decode ``(value, partition, offset)`` messages into columns and a list of refusals."""
    now = time.time() if now is None else now
    lo, hi = now - MAX_AGE_S, now + MAX_FUTURE_SKEW_S
    out = _Builder()
    rejected: list[Rejected] = []
    for value, partition, offset in messages:
        if value is None or len(value) > max_bytes or not _fast_path(out, value, partition, offset, lo, hi):
            try:
                batch = decode(value, MetricBatch, max_bytes=max_bytes)
            except SchemaError as e:
                rejected.append(Rejected(value, partition, offset, str(e)))
                continue
            _add_model(out, batch, partition, offset)
    return out.build(), rejected


def _fast_path(out: _Builder, raw: bytes, partition: int, offset: int, lo: float, hi: float) -> bool:
    """Column-wise checks of one message; False sends it to the strict model instead."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    if type(obj) is not dict or obj.get("kind", "metrics") != "metrics":
        return False
    version = obj.get("v", 1)
    if type(version) is not int or version != 1:
        return False
    node, bts, samples = obj.get("node"), obj.get("ts"), obj.get("samples")
    blabels = obj.get("labels") or {}
    if not _CHECKS.node_ok(node) or type(bts) not in _NUMBER or not lo <= bts <= hi:
        return False
    if type(samples) is not list or not 0 < len(samples) <= _MAX_SAMPLES or blabels:
        return False  # batch-level labels are merged into each sample's: the model's path does that
    seq = obj.get("seq", 0)
    if type(seq) is not int or seq < 0 or not all(type(s) is dict for s in samples):
        return False
    gpu = [s.get("gpu") for s in samples]
    value = [s.get("value") for s in samples]
    metric = [s.get("metric") for s in samples]
    uuid = [s.get("uuid", "") for s in samples]
    unit = [s.get("unit", "") for s in samples]
    sts = [s.get("ts") for s in samples]
    labels = [s.get("labels", _NO_LABELS) for s in samples]
    if set(map(type, gpu)) != {int} or not set(map(type, value)) <= _NUMBER:
        return False
    runs = _label_runs(labels)
    if not _CHECKS.labels_ok(runs[0]):
        return False
    v = np.asarray(value, np.float64)
    if not np.isfinite(v).all():
        return False
    stamped = sts.count(None) != len(sts)
    layout = _LAYOUTS.get(node)
    if (not stamped and layout is not None and layout[0] == gpu and layout[1] == metric and layout[2] == uuid
            and layout[3] == unit):
        # the node's usual layout, checked before (names, GPUs, no series twice): its interned names serve
        out.add(node, float(bts), partition, offset, np.full(len(gpu), float(bts)), np.asarray(gpu), v,
                layout[2], layout[1], layout[3], _shared_labels(*runs))
        return True
    if not _CHECKS.metrics_ok(metric):
        return False
    if not set(map(type, uuid)) <= {str} or not set(map(type, unit)) <= {str}:
        return False
    if max(map(len, uuid)) > 96 or max(map(len, unit)) > 16:
        return False
    g = np.asarray(gpu)
    if g.min() < -1 or g.max() > 1023:
        return False
    if stamped:
        if not set(map(type, sts)) <= _NUMBER | {type(None)}:
            return False
        ts = np.asarray([bts if t is None else t for t in sts], np.float64)
        if not ((ts >= lo) & (ts <= hi)).all():
            return False
        series = list(zip(gpu, metric, ts.tolist()))
    else:
        ts = np.full(len(gpu), float(bts))
        series = list(zip(gpu, metric))
    if len(set(series)) != len(series):
        # the same series twice at one time, unless labels tell them apart (per process, MIG, mount)
        if not any(labels) or len(set(zip(series, map(_label_key, labels)))) != len(series):
            return False
    uuid, metric, unit = list(map(intern, uuid)), list(map(intern, metric)), list(map(intern, unit))
    if not stamped and len(set(series)) == len(series):
        if len(_LAYOUTS) >= LAYOUTS_KEPT:  # nodes come and go; a stream of made-up node names must not grow it
            _LAYOUTS.clear()
        _LAYOUTS[node] = (gpu, metric, uuid, unit)
    out.add(node, float(bts), partition, offset, ts, g, v, uuid, metric, unit, _shared_labels(*runs))
    return True


def _label_runs(labels: list) -> tuple[list, list[int]]:
    """Runs of equal neighbouring label sets: the first of each run, and the runs' lengths.

    An agent sends a GPU's samples together, each carrying its job's labels, so a batch of ~180
    samples holds ~10 runs; checking and sharing each run once, not each sample, is most of what
    labels cost to decode (issue 10)."""
    firsts: list = []
    lengths: list[int] = []
    prev: object = _START
    n = 0
    for d in labels:
        if d is prev or d == prev:
            n += 1
            continue
        if n:
            lengths.append(n)
        firsts.append(d)
        prev, n = d, 1
    if n:
        lengths.append(n)
    return firsts, lengths


def _shared_labels(firsts: list[dict], lengths: list[int]) -> list[dict]:
    """Each sample's labels from :func:`_label_runs`, equal label dicts as one object. Every sample of a
    GPU carries its job's labels, each decoded into its own dict: ~300 of the ~530 bytes a buffered sample
    held, and a catching-up worker buffers 100k+ of them between inserts (issue 10). Label dicts of decoded
    batches are never changed in place, so sharing is safe."""
    memo = _LABELS_MEMO
    if len(memo) > 100_000:  # pods come and go: forget them all now and then
        memo.clear()
    out: list[dict] = []
    for d, n in zip(firsts, lengths):
        if d:
            key = tuple(d.items())
            shared = memo.get(key)
            if shared is None:
                shared = memo[key] = d
        else:
            shared = _NO_LABELS
        out += [shared] * n
    return out


def _add_model(out: _Builder, batch: MetricBatch, partition: int, offset: int) -> None:
    """A message the strict model accepted: its samples, batch labels merged into each sample's."""
    s = batch.samples
    labels = [{**batch.labels, **x.labels} if batch.labels else dict(x.labels) for x in s]
    if batch.labels:
        out.cols.own_labels[len(out.counts)] = [dict(x.labels) for x in s]
    ts = np.asarray([batch.sample_ts(x) for x in s], np.float64)
    out.add(batch.node, batch.ts, partition, offset, ts, np.asarray([x.gpu for x in s], np.int64),
            np.asarray([x.value for x in s], np.float64),
            [x.uuid for x in s], [x.metric for x in s], [x.unit for x in s], labels)
