WITH
    -- MTBF: mean time between failures, last 90 days, per alert name, node and GPU model:
    -- the time from one incident's resolution to the next incident's start on the same
    -- (alertname, node, gpu_model). Needs at least two incidents.
    -- Run: gpuwatch query "$(cat infra/clickhouse/queries/mtbf.sql)"
    incidents AS (
    SELECT alertname, node, labels['gpu_model'] AS gpu_model, fingerprint, starts_at,
           maxIf(coalesce(ends_at, event_ts), status = 'resolved') AS resolved_at
    FROM gpuwatch.alerts
    WHERE starts_at >= now() - INTERVAL 90 DAY
    GROUP BY alertname, node, gpu_model, fingerprint, starts_at
),
gaps AS (
    SELECT alertname, node, gpu_model, starts_at,
           lagInFrame(resolved_at) OVER w AS prev_resolved_at,
           row_number() OVER w AS n
    FROM incidents
    WINDOW w AS (PARTITION BY alertname, node, gpu_model ORDER BY starts_at
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT alertname, node, gpu_model,
       count() + 1 AS incidents,
       round(avg(dateDiff('millisecond', prev_resolved_at, starts_at)) / 3600000, 2) AS mtbf_h
FROM gaps
WHERE n > 1 AND prev_resolved_at > toDateTime64(0, 3, 'UTC')
GROUP BY alertname, node, gpu_model
ORDER BY mtbf_h ASC
