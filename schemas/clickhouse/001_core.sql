-- gpuwatch core tables. One DDL for chDB (embedded) and a ClickHouse server.
-- {db} is replaced with the configured database name. Statements end with ';'
-- on a line end. Every statement is idempotent (IF NOT EXISTS).

-- Raw samples, exactly one row per sample published. src_partition/src_offset
-- record where the row came from in Kafka: the sink resumes after the highest
-- stored offset, which is what makes a crash-and-replay write nothing twice.
CREATE TABLE IF NOT EXISTS {db}.metrics_raw
(
    ts            DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    node          LowCardinality(String),
    gpu           Int16,
    uuid          LowCardinality(String),
    metric        LowCardinality(String),
    value         Float64 CODEC(Gorilla, ZSTD),
    unit          LowCardinality(String),
    -- Plain String keys: with LowCardinality keys nested in the Map, every merge re-maps each
    -- part's key dictionary. Merging 2M rows of the ingest bench took 2.1 CPU-s that way and 0.9
    -- with String keys, for 100 KiB more compressed labels (issue 10). A table made before keeps
    -- its type: inserts and queries are the same for both.
    labels        Map(String, String),
    src_partition UInt16,
    src_offset    UInt64
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (node, gpu, metric, ts)
TTL toDateTime(ts) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- 1-minute tumbling-window features per series. A window recomputed after a
-- replay replaces the earlier row with identical values.
CREATE TABLE IF NOT EXISTS {db}.features_1m
(
    window_start DateTime('UTC'),
    node         LowCardinality(String),
    gpu          Int16,
    uuid         LowCardinality(String),
    metric       LowCardinality(String),
    count        UInt32,
    min          Float64,
    max          Float64,
    mean         Float64,
    last         Float64,
    p95          Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (node, gpu, metric, window_start)
TTL window_start + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Anomaly scores, for analysts and for tuning thresholds. A replay after a
-- crash rewrites the same (node, gpu, detector, subject, ts) keys, which merge away.
CREATE TABLE IF NOT EXISTS {db}.anomaly_scores
(
    ts        DateTime64(3, 'UTC'),
    node      LowCardinality(String),
    gpu       Int16,
    detector  LowCardinality(String),
    subject   LowCardinality(String),
    score     Float64,
    threshold Float64,
    anomalous UInt8
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (node, gpu, detector, subject, ts)
TTL toDateTime(ts) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Every alert state change, as published on the alerts topic.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    event_ts       DateTime64(3, 'UTC'),
    fingerprint    String,
    status         LowCardinality(String),
    alertname      LowCardinality(String),
    severity       LowCardinality(String),
    node           LowCardinality(String),
    gpu            Int16,
    source         LowCardinality(String),
    starts_at      DateTime64(3, 'UTC'),
    ends_at        Nullable(DateTime64(3, 'UTC')),
    labels         Map(LowCardinality(String), String),
    annotations    Map(String, String),
    evidence       String,
    evidence_query String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_ts)
ORDER BY (fingerprint, status, starts_at)
SETTINGS non_replicated_deduplication_window = 1000;

-- Log records, one row per line.
CREATE TABLE IF NOT EXISTS {db}.logs
(
    ts            DateTime64(3, 'UTC'),
    node          LowCardinality(String),
    source        LowCardinality(String),
    level         LowCardinality(String),
    message       String,
    template_id   UInt64,
    -- String keys, as metrics_raw's: cheaper merges
    labels        Map(String, String),
    src_partition UInt16,
    src_offset    UInt64
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (node, ts)
TTL toDateTime(ts) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Discrete node events: XID/SXID, log-derived criticals, agent notices.
CREATE TABLE IF NOT EXISTS {db}.node_events
(
    ts         DateTime64(3, 'UTC'),
    node       LowCardinality(String),
    gpu        Int16,
    source     LowCardinality(String),
    code       UInt32,
    severity   LowCardinality(String),
    action     LowCardinality(String),
    title      String,
    message    String,
    pci_bus_id String,
    labels     Map(LowCardinality(String), String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (node, ts, source, code, gpu)
SETTINGS non_replicated_deduplication_window = 1000;

-- Heartbeats: the last one per node says what the agent saw and when.
CREATE TABLE IF NOT EXISTS {db}.heartbeats
(
    ts            DateTime64(3, 'UTC'),
    node          LowCardinality(String),
    agent_version LowCardinality(String),
    gpu_count     UInt16,
    collectors    Map(LowCardinality(String), UInt8)
)
ENGINE = ReplacingMergeTree
ORDER BY (node, ts)
TTL toDateTime(ts) + INTERVAL 30 DAY;
