WITH
    -- The noisiest alerts of the last 7 days: incidents (flaps count) and notifications sent.
    -- Run: gpuwatch query "$(cat infra/clickhouse/queries/noisiest_alerts.sql)"
    per_alert AS (
    SELECT fingerprint, any(alertname) AS alertname, any(node) AS node,
           uniqExactIf(starts_at, status = 'firing') AS incidents
    FROM gpuwatch.alerts
    WHERE event_ts >= now() - INTERVAL 7 DAY
    GROUP BY fingerprint
),
sent AS (
    SELECT fp AS fingerprint, count() AS notifications
    FROM gpuwatch.notification_attempts
    ARRAY JOIN fingerprints AS fp
    WHERE outcome = 'delivered' AND ts >= now() - INTERVAL 7 DAY
    GROUP BY fp
)
SELECT p.alertname, p.node,
       sum(p.incidents) AS incidents,
       count() AS distinct_alerts,
       sum(s.notifications) AS notifications
FROM per_alert AS p
LEFT JOIN sent AS s ON s.fingerprint = p.fingerprint
GROUP BY p.alertname, p.node
ORDER BY incidents DESC, notifications DESC
LIMIT 20
