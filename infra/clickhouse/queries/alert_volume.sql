SELECT
    -- Alert volume over time: new incidents and resolutions per hour and severity, last 7 days.
    -- Run: gpuwatch query "$(cat infra/clickhouse/queries/alert_volume.sql)"
    toStartOfHour(event_ts) AS hour, severity,
       countIf(status = 'firing') AS fired,
       countIf(status = 'resolved') AS resolved
FROM gpuwatch.alerts
WHERE event_ts >= now() - INTERVAL 7 DAY
GROUP BY hour, severity
ORDER BY hour, severity
