WITH
    -- MTTA: mean time from an alert firing to its first acknowledgement, last 30 days,
    -- per alert name, node and GPU model (the alert's gpu_model label; '' if unset).
    -- Run: gpuwatch query "$(cat infra/clickhouse/queries/mtta.sql)"
    incidents AS (
    SELECT fingerprint, starts_at, any(alertname) AS alertname, any(node) AS node,
           any(labels['gpu_model']) AS gpu_model
    FROM gpuwatch.alerts
    WHERE status = 'firing' AND starts_at >= now() - INTERVAL 30 DAY
    GROUP BY fingerprint, starts_at
),
first_acks AS (
    SELECT fingerprint, starts_at, min(ts) AS acked_at
    FROM gpuwatch.alert_acks
    WHERE action = 'ack'
    GROUP BY fingerprint, starts_at
)
SELECT i.alertname, i.node, i.gpu_model,
       count() AS acked_incidents,
       round(avg(dateDiff('millisecond', i.starts_at, a.acked_at)) / 1000, 1) AS mtta_s,
       round(quantile(0.9)(dateDiff('millisecond', i.starts_at, a.acked_at)) / 1000, 1) AS p90_tta_s
FROM incidents AS i
INNER JOIN first_acks AS a ON a.fingerprint = i.fingerprint AND a.starts_at = i.starts_at
GROUP BY i.alertname, i.node, i.gpu_model
ORDER BY mtta_s DESC
