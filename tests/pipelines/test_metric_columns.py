"""The columnar decoder accepts exactly what the strict model accepts, with the same values.

A differential test: many messages, good and subtly bad, go through both the
column-wise decoder and :func:`schemas.codec.decode`; any difference is a bug
in the fast path (it must never accept what the contract refuses, nor lose a
sample the contract keeps).
"""

from __future__ import annotations

import random
import re
import time

import numpy as np
import orjson
import pytest

from pipelines.transforms.metric_columns import decode_metric_messages
from schemas.codec import SchemaError, decode
from schemas.metrics import MetricBatch

NOW = time.time()


def _good(rng: random.Random, node: str, n: int | None = None) -> dict:
    n = rng.randrange(1, 40) if n is None else n
    return {"node": node, "ts": NOW - rng.random() * 100, "seq": rng.randrange(1000), "samples": [
        {"gpu": i % 8, "uuid": f"GPU-{i % 8}", "metric": f"m_{i // 8}", "value": rng.random() * 100, "unit": "W"}
        for i in range(n)]}


MUTATIONS = [
    lambda m: m["samples"][0].__setitem__("value", "97"),
    lambda m: m["samples"][0].__setitem__("value", True),
    lambda m: m["samples"][0].__setitem__("value", 1e400),  # orjson writes inf as null
    lambda m: m["samples"][0].__setitem__("gpu", 1.0),
    lambda m: m["samples"][0].__setitem__("gpu", 1024),
    lambda m: m["samples"][0].__setitem__("gpu", -2),
    lambda m: m["samples"][0].__setitem__("metric", "9bad"),
    lambda m: m["samples"][0].__setitem__("metric", "ok_but_new_name"),
    lambda m: m["samples"][0].__setitem__("uuid", "x" * 97),
    lambda m: m["samples"][0].__setitem__("unit", "u" * 17),
    lambda m: m["samples"][0].__setitem__("ts", NOW + 10_000),
    lambda m: m["samples"][0].__setitem__("ts", NOW - 5),
    lambda m: m["samples"][0].__setitem__("labels", {"pid": "42"}),
    lambda m: m["samples"][0].__setitem__("labels", {"9bad": "x"}),
    lambda m: m["samples"][0].__setitem__("labels", {"pid": 42}),
    lambda m: m["samples"][0].__setitem__("labels", None),
    lambda m: m["samples"][0].__setitem__("labels", ["pid", "42"]),
    lambda m: m["samples"][0].__setitem__("labels", {"pid": "x" * 257}),
    lambda m: m["samples"][0].__setitem__("labels", {f"k{i}": "v" for i in range(33)}),
    lambda m: [s.__setitem__("labels", {"job": "j1", "pod": f"p-{s['gpu']}"}) for s in m["samples"]],
    # labels are checked once per run of equal neighbours: a bad set after a run of good ones is still seen
    lambda m: [s.__setitem__("labels", {"job": "j1"}) for s in m["samples"]] and m["samples"][-1].__setitem__(
        "labels", {"job": 1}),
    lambda m: [s.__setitem__("labels", {"job": "j1"}) for s in m["samples"]] and m["samples"][-1].__setitem__(
        "labels", ["job", "j1"]),
    lambda m: m["samples"][-1].__setitem__("labels", {"pid": "x" * 257}),
    lambda m: m["samples"].append({**m["samples"][0], "labels": {"pid": "7"}}),  # told apart by labels
    lambda m: m["samples"].extend([{**m["samples"][0], "labels": {"pid": "7"}}] * 2),  # ... but twice
    lambda m: m["samples"].append(dict(m["samples"][0])),
    lambda m: m.__setitem__("samples", []),
    lambda m: m.__setitem__("node", "bad node"),
    lambda m: m.__setitem__("ts", NOW + 3600),
    lambda m: m.__setitem__("ts", int(NOW)),
    lambda m: m.__setitem__("seq", -1),
    lambda m: m.__setitem__("v", 2),
    lambda m: m.__setitem__("v", True),
    lambda m: m.__setitem__("labels", {"job": "j1"}),
    lambda m: m.__setitem__("extra_field", 1),
    lambda m: m["samples"][0].pop("metric"),
    lambda m: m["samples"][0].pop("uuid"),
]


def _strict(raw: bytes):
    try:
        return decode(raw, MetricBatch)
    except SchemaError as e:
        return str(e)


@pytest.mark.parametrize("layouts", ["random", "repeated"])
def test_fast_path_agrees_with_the_strict_model_on_good_and_bad_messages(layouts):
    """With repeated layouts, a node's usual batch is checked against the layout it sent before: a bad
    one laid out like a good one must still be refused."""
    rng = random.Random(7)
    messages = []
    for i in range(600):
        m = _good(rng, f"node-{i % 13}", None if layouts == "random" else 24)
        if rng.random() < 0.5:
            rng.choice(MUTATIONS)(m)
        messages.append((orjson.dumps(m), i % 3, i))
    messages.append((b"{not json", 0, 999))
    messages.append((None, 0, 1000))
    cols, rejected = decode_metric_messages(messages, now=NOW)

    expected = {off: _strict(raw) if raw is not None else "empty" for raw, _, off in messages}
    refused = {r.offset: r.reason for r in rejected}
    for off, verdict in expected.items():
        if isinstance(verdict, MetricBatch):
            assert off not in refused, (off, refused.get(off))
        else:
            assert off in refused, f"offset {off} accepted but the model refuses it: {verdict}"
            if verdict != "empty":  # the same reason (seconds-in-the-future figures may differ by a tick)
                assert re.sub(r"\d+", "N", refused[off]) == re.sub(r"\d+", "N", verdict)

    kept = [(off, b) for off, b in expected.items() if isinstance(b, MetricBatch)]
    assert cols.batch_offset.tolist() == [off for off, _ in kept]
    want_values = [s.value for _, b in kept for s in b.samples]
    want_ts = [b.sample_ts(s) for _, b in kept for s in b.samples]
    want_labels = [{**b.labels, **s.labels} for _, b in kept for s in b.samples]
    assert cols.value.tolist() == want_values
    assert np.allclose(cols.ts, want_ts)
    assert cols.labels == want_labels
    assert cols.metric == [s.metric for _, b in kept for s in b.samples]
    assert cols.gpu.tolist() == [s.gpu for _, b in kept for s in b.samples]
    assert cols.src_offset.tolist() == [off for off, b in kept for _ in b.samples]
    assert len(rejected) > 50 and len(kept) > 300  # both paths were exercised


def test_columns_insert_into_clickhouse_as_arrow(store):
    rng = random.Random(1)
    messages = [(orjson.dumps(_good(rng, f"n{i}")), 2, 100 + i) for i in range(20)]
    cols, rejected = decode_metric_messages(messages, now=NOW)
    assert not rejected
    store._client.insert_arrow(f"{store.database}.metrics_raw", cols.to_arrow())
    rows = store.query(f"SELECT count(), sum(value), min(src_offset), max(src_offset), any(src_partition) "
                       f"FROM {store.database}.metrics_raw").rows[0]
    assert rows[0] == len(cols) and rows[1] == pytest.approx(float(cols.value.sum()))
    assert (rows[2], rows[3], rows[4]) == (100, 119, 2)


def test_buffered_samples_share_equal_labels_and_names_and_keep_their_values():
    """A catching-up worker buffers 100k+ samples between inserts; a dict and three strings per sample were
    ~500 of the ~530 bytes each held (issue 10). Equal ones are one object now, with the same contents."""
    def message(offset: int) -> bytes:
        return orjson.dumps({"node": "n1", "ts": NOW - 10 + offset, "samples": [
            {"gpu": g, "uuid": f"GPU-{g}", "metric": metric, "value": 1.0, "unit": "C",
             "labels": {"job": f"job-{g % 2}", "pod": f"pod-{g % 2}"}}
            for g in range(4) for metric in ("gpu_temp_c", "power_w")]})

    cols, rejected = decode_metric_messages([(message(i), 0, i) for i in range(3)])
    assert not rejected and len(cols) == 24
    assert [d["job"] for d in cols.labels[:8]] == ["job-0"] * 2 + ["job-1"] * 2 + ["job-0"] * 2 + ["job-1"] * 2
    assert len({id(d) for d in cols.labels}) == 2, "each sample held its own labels dict"
    assert len({id(m) for m in cols.metric}) == 2 and len({id(u) for u in cols.uuid}) == 4
    assert cols.to_arrow().column("labels").to_pylist()[2] == [("job", "job-1"), ("pod", "pod-1")]


@pytest.mark.parametrize("shared", [True, False])
def test_the_labels_column_holds_each_rows_labels_and_inserts(store, shared):
    """Shared label dicts are encoded once each and taken per row; labels hardly shared, row by row."""
    rng = random.Random(3)
    sets = [{}, {"job": "j1", "pod": "p-1"}, {"job": "j2"}, {"mount": "/data", "pod": "ü"}]
    messages = []
    for i in range(12):
        m = _good(rng, f"n{i % 3}", 30)
        for s in m["samples"]:
            s["labels"] = rng.choice(sets) if shared else {"pid": str(rng.randrange(10**6))}
        messages.append((orjson.dumps(m), 0, i))
    cols, rejected = decode_metric_messages(messages, now=NOW)
    assert not rejected
    table = cols.to_arrow()
    assert table.column("labels").to_pylist() == [list(d.items()) for d in cols.labels]
    store._client.insert_arrow(f"{store.database}.metrics_raw", table)
    got = store.query(f"SELECT src_offset, gpu, metric, labels FROM {store.database}.metrics_raw").rows
    want = {(int(o), int(g), m): d for o, g, m, d in zip(cols.src_offset, cols.gpu, cols.metric, cols.labels)}
    assert {(o, g, m): dict(d) for o, g, m, d in got} == want


def test_a_message_decoded_alone_gives_the_columns_it_gives_among_others():
    rng = random.Random(5)
    raws = [orjson.dumps(_good(rng, f"node-{i % 3}", 12)) for i in range(9)]
    together, _ = decode_metric_messages([(raw, 0, i) for i, raw in enumerate(raws)], now=NOW)
    alone = [decode_metric_messages([(raw, 0, i)], now=NOW)[0] for i, raw in enumerate(raws)]
    for name in ("ts", "gpu", "value", "src_offset"):
        joined = np.concatenate([getattr(c, name) for c in alone])
        assert joined.dtype == getattr(together, name).dtype, name
        np.testing.assert_array_equal(joined, getattr(together, name), err_msg=name)
    assert all(c.batch.tolist() == [0] * len(c) and c.batch.dtype == np.int32 for c in alone)
    assert sum((c.metric for c in alone), []) == together.metric


def test_a_stream_of_new_node_names_does_not_grow_the_layouts_kept():
    from pipelines.transforms import metric_columns

    rng = random.Random(9)
    for i in range(metric_columns.LAYOUTS_KEPT + 50):
        cols, rejected = decode_metric_messages([(orjson.dumps(_good(rng, f"made-up-{i}", 3)), 0, i)], now=NOW)
        assert not rejected and len(cols) == 3
    assert len(metric_columns._LAYOUTS) <= metric_columns.LAYOUTS_KEPT
