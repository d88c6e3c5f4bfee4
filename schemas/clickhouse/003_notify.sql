-- Notifier history: notification attempts, silences and acks. Alert state
-- changes are in 001_core's `alerts` table. The notify worker never writes
-- here itself: it publishes HistoryRecord messages on the notifications topic
-- and the pipeline's history processor inserts them. Columns named `ts` or
-- `*_at` arrive as float epoch seconds. ReplacingMergeTree keys make a replayed
-- record collapse into the one already stored.

-- Every delivery attempt of a notification, with its result.
CREATE TABLE IF NOT EXISTS {db}.notification_attempts
(
    ts           DateTime64(3, 'UTC'),
    receiver     LowCardinality(String),
    integration  LowCardinality(String),
    group_key    String,
    status       LowCardinality(String),
    fingerprints Array(String),
    alert_count  UInt32,
    attempt      UInt16,
    outcome      LowCardinality(String),
    recoverable  UInt8,
    error        String,
    duration_ms  Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (integration, group_key, ts, attempt)
TTL toDateTime(ts) + INTERVAL 365 DAY;

-- Silence changes: created and expired, with author and comment.
CREATE TABLE IF NOT EXISTS {db}.silences
(
    ts         DateTime64(3, 'UTC'),
    silence_id String,
    action     LowCardinality(String),
    matchers   String,
    starts_at  DateTime64(3, 'UTC'),
    ends_at    DateTime64(3, 'UTC'),
    created_by LowCardinality(String),
    comment    String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (silence_id, ts, action);

-- Acks and unacks with their owner. starts_at identifies the incident (with
-- fingerprint), so MTTA is ts - starts_at of the first ack.
CREATE TABLE IF NOT EXISTS {db}.alert_acks
(
    ts          DateTime64(3, 'UTC'),
    fingerprint String,
    action      LowCardinality(String),
    owner       LowCardinality(String),
    comment     String,
    starts_at   DateTime64(3, 'UTC'),
    alertname   LowCardinality(String),
    node        LowCardinality(String),
    labels      Map(LowCardinality(String), String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (fingerprint, starts_at, ts, action);
