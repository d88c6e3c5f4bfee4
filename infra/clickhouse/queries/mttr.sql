SELECT
    -- MTTR: mean time from an alert firing to its resolution, last 30 days,
    -- per alert name, node and GPU model (the alert's gpu_model label; '' if unset).
    -- Run: gpuwatch query "$(cat infra/clickhouse/queries/mttr.sql)"
    alertname, node, labels['gpu_model'] AS gpu_model,
       count() AS resolved_incidents,
       round(avg(dateDiff('millisecond', starts_at, coalesce(ends_at, event_ts))) / 1000, 1) AS mttr_s,
       round(quantile(0.9)(dateDiff('millisecond', starts_at, coalesce(ends_at, event_ts))) / 1000, 1) AS p90_ttr_s
FROM gpuwatch.alerts FINAL
WHERE status = 'resolved' AND starts_at >= now() - INTERVAL 30 DAY
GROUP BY alertname, node, gpu_model
ORDER BY mttr_s DESC
