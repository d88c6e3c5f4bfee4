"""The console's SQL, in one place: the page runs these texts through ``/query``.

Placeholders in braces are filled by the page with quoted literals
(``{metric}`` -> ``'gpu_temp_c'``), numbers (``{gpu}``) or times
(``{onset}``, epoch seconds). Every statement is read-only, so ``/query``
(and its token off loopback) is all the page needs to read.
"""

from __future__ import annotations

from pipelines.open_incidents import incidents_sql

#: Metrics offered for colouring the heat map; the first is the default.
HEATMAP_METRICS = ("gpu_temp_c", "gpu_util_pct", "power_w", "sm_clock_mhz", "mem_util_pct", "ecc_sbe_volatile_total",
                   "ecc_dbe_volatile_total", "nvlink_crc_errors_total", "fb_used_bytes")

_LATEST = "(SELECT max(ts) FROM gpuwatch.metrics_raw)"

QUERIES = {
    "incidents": incidents_sql(include_resolved=False, limit=100),
    "recent_incidents": incidents_sql(include_resolved=True, limit=100),
    # Every GPU seen in the last 5 minutes of data, with the chosen metric's latest value.
    "heatmap": (
        "SELECT node, gpu, argMaxIf(value, ts, metric = {metric}) AS value, "
        "countIf(metric = {metric}) > 0 AS has_value FROM gpuwatch.metrics_raw "
        f"WHERE ts > {_LATEST} - INTERVAL 5 MINUTE AND gpu >= 0 GROUP BY node, gpu ORDER BY node, gpu"),
    "metrics": (
        "SELECT DISTINCT metric FROM gpuwatch.metrics_raw "
        f"WHERE ts > {_LATEST} - INTERVAL 1 MINUTE AND gpu >= 0 ORDER BY metric"),
    # One series around an incident's onset: two minutes before to three after.
    "evidence": (
        "SELECT toUnixTimestamp64Milli(ts) / 1000 AS t, value FROM gpuwatch.metrics_raw "
        "WHERE node = {node} AND gpu = {gpu} AND metric = {metric} "
        "AND ts BETWEEN fromUnixTimestamp64Milli(toInt64({onset} * 1000)) - INTERVAL 120 SECOND "
        "AND fromUnixTimestamp64Milli(toInt64({onset} * 1000)) + INTERVAL 180 SECOND ORDER BY ts"),
    # A node's GPUs over its last 5 minutes of data, in 5-second steps.
    "node_series": (
        "SELECT gpu, toUnixTimestamp(toStartOfInterval(ts, INTERVAL 5 SECOND)) AS t, round(avg(value), 2) AS v "
        "FROM gpuwatch.metrics_raw WHERE node = {node} AND metric = {metric} AND gpu >= 0 "
        "AND ts > (SELECT max(ts) FROM gpuwatch.metrics_raw WHERE node = {node}) - INTERVAL 5 MINUTE "
        "GROUP BY gpu, t ORDER BY gpu, t"),
}
