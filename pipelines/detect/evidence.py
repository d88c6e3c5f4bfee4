"""Evidence for an alert: the contributing metrics against their baselines, and the SQL that shows them.

>>> print(metrics_query("gpuwatch", "node-1", [3], ["gpu_temp_c"], 1700000000.0, 1700000900.0))
SELECT ts, node, gpu, metric, value FROM gpuwatch.metrics_raw WHERE node = 'node-1' AND gpu IN (3) AND metric IN ('gpu_temp_c') AND ts BETWEEN toDateTime64(1700000000.000, 3, 'UTC') AND toDateTime64(1700000900.000, 3, 'UTC') ORDER BY metric, gpu, ts
"""

from __future__ import annotations

import math

from schemas.alerts import Evidence


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def metrics_query(database: str, node: str, gpus: list[int] | None, metrics: list[str],
                  start: float, end: float) -> str:
    """ClickHouse SQL over ``metrics_raw`` for these series between ``start`` and ``end`` (epoch s).

    ``gpus=None`` shows every GPU of the node (peer comparisons need the neighbours).
    """
    where = [f"node = {_quote(node)}"]
    if gpus is not None:
        where.append(f"gpu IN ({', '.join(str(int(g)) for g in sorted(set(gpus)))})")
    if metrics:
        where.append(f"metric IN ({', '.join(_quote(m) for m in dict.fromkeys(metrics))})")
    where.append(f"ts BETWEEN toDateTime64({start:.3f}, 3, 'UTC') AND toDateTime64({end:.3f}, 3, 'UTC')")
    return (f"SELECT ts, node, gpu, metric, value FROM {database}.metrics_raw WHERE "
            + " AND ".join(where) + " ORDER BY metric, gpu, ts")


def _f(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def evidence(metric: str, value: float | None, baseline: float | None, score: float | None,
             detail: str = "") -> Evidence:
    """An :class:`Evidence` that tolerates NaN/inf (dropped, since the wire refuses them)."""
    return Evidence(metric=metric[:128], value=_f(value), baseline=_f(baseline), score=_f(score),
                    detail=detail[:1024])
