"""What the GPU and its peers read: at the page, at the resolution, and around the onset.

The detectors' evidence is one value against a baseline. A person also wants
what the neighbours read at that moment, what the GPU reads *now* when the
incident resolves (not the last value while it was bad), and the series
around the onset. The first two come from memory (the node's latest batch,
rows as the metrics processor stores them: ``(ts, node, gpu, uuid, metric,
value, ...)``); the series comes later, from ClickHouse, with the update.

>>> rows = [(1.0, "n1", g, "", "gpu_temp_c", 70.0 + g, "C", {}, 0, 0) for g in range(4)]
>>> peers_line(rows, "3", "gpu_temp_c")
'temperature now: GPU 3 73 °C; peers GPU 0 70 °C, GPU 1 71 °C, GPU 2 72 °C'
>>> values_at(rows, "3", ["gpu_temp_c"])
{'gpu_temp_c': 73.0}
"""

from __future__ import annotations

from pipelines.decide.wording import NAMES, fmt, unit_of
from schemas.alerts import AlertEvent, Evidence

#: Peers listed on a page at most (a node has 8 GPUs; a larger one is summarised).
MAX_PEERS = 16


def values_at(rows: list[tuple], gpu: str, metrics: list[str]) -> dict[str, float]:
    """The latest value of each of ``metrics`` on ``gpu`` in a node's batch rows."""
    want, out = set(metrics), {}
    g = int(gpu) if gpu.lstrip("-").isdigit() else None
    for r in rows:
        if r[2] == g and r[4] in want:
            out[r[4]] = float(r[5])
    return out


def peers_line(rows: list[tuple], gpu: str, metric: str) -> str:
    """One line: this GPU's value and each peer's, with the unit."""
    unit = unit_of(metric)
    g = int(gpu)
    values = sorted((r[2], float(r[5])) for r in rows if r[4] == metric and r[2] >= 0)
    mine = [v for i, v in values if i == g]
    peers = [(i, v) for i, v in values if i != g][:MAX_PEERS]
    if not mine or not peers:
        return ""
    listed = ", ".join(f"GPU {i} {fmt(v, unit)}" for i, v in peers)
    return f"{NAMES.get(metric, metric)} now: GPU {g} {fmt(mine[0], unit)}; peers {listed}"


def gpu_metrics(ev: AlertEvent) -> list[str]:
    """The metrics named by an alert's evidence that a GPU reports (not log templates or counts)."""
    return list(dict.fromkeys(e.metric for e in ev.evidence if e.value is not None and not e.metric.startswith(
        ("log_", "samples", "heartbeat", "xid_", "sxid_"))))


def with_peers(ev: AlertEvent, rows: list[tuple]) -> AlertEvent:
    """A firing alert on a GPU, with the node's other GPUs' readings of the same metrics."""
    gpu = ev.labels.get("gpu", "")
    if not gpu.isdigit() or not rows:
        return ev
    lines = [line for m in gpu_metrics(ev)[:3] if (line := peers_line(rows, gpu, m))]
    return ev.model_copy(update={"annotations": {**ev.annotations, "peers": "\n".join(lines)}}) if lines else ev


def at_resolution(ev: AlertEvent, rows: list[tuple]) -> AlertEvent:
    """A resolved alert whose evidence values are the GPU's readings now, not the last bad ones."""
    gpu = ev.labels.get("gpu", "")
    now = values_at(rows, gpu, gpu_metrics(ev)) if rows else {}
    if not now:
        return ev
    evidence, lines = [], []
    for e in ev.evidence:
        if e.metric in now and e.value is not None:
            unit = unit_of(e.metric, e.detail)
            lines.append(f"{NAMES.get(e.metric, e.metric)} on GPU {gpu} is {fmt(now[e.metric], unit)} now "
                         f"({fmt(e.value, unit)} while it fired)")
            e = Evidence(metric=e.metric, value=now[e.metric], baseline=e.baseline, score=None,
                         detail=f"value at resolution; {fmt(e.value, unit)} while firing; {e.detail}"[:1024])
        evidence.append(e)
    return ev.model_copy(update={"evidence": evidence,
                                 "annotations": {**ev.annotations, "at_resolution": "\n".join(dict.fromkeys(lines))}})


def series_query(database: str, node: str, gpu: str, metric: str, start: float, end: float) -> str:
    """SQL for one GPU's series of one metric between two times (for the series around the onset)."""
    quote = lambda s: "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"  # noqa: E731
    return (f"SELECT toUnixTimestamp64Milli(ts) / 1000 AS t, value FROM {database}.metrics_raw "
            f"WHERE node = {quote(node)} AND gpu = {int(gpu)} AND metric = {quote(metric)} "
            f"AND ts BETWEEN toDateTime64({start:.3f}, 3, 'UTC') AND toDateTime64({end:.3f}, 3, 'UTC') ORDER BY ts")


def series_line(metric: str, points: list[tuple[float, float]], onset: float, most: int = 24) -> str:
    """The series as one line, thinned to ``most`` points, the onset marked.

    >>> series_line("gpu_temp_c", [(float(t), 70.0 + max(0, t - 5) * 3) for t in range(10)], onset=6.0, most=10)
    'temperature, 1 s apart: 70 70 70 70 70 70 | 73 76 79 82 °C (| = onset)'
    """
    if not points:
        return ""
    step = max(1, -(-len(points) // most))
    kept = points[::step]
    unit = unit_of(metric)
    spacing = (kept[1][0] - kept[0][0]) if len(kept) > 1 else 0.0
    words = []
    for i, (t, v) in enumerate(kept):
        if i and kept[i - 1][0] < onset <= t:
            words.append("|")
        words.append(fmt(v, "").strip())
    return f"{NAMES.get(metric, metric)}, {spacing:g} s apart: {' '.join(words)} {unit} (| = onset)".replace("  ", " ")
