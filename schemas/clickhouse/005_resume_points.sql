-- Resume points (issue 10; pipelines/sinks/resume_points.py): where each Kafka partition's rows end in
-- a table that records its source (metrics_raw, logs). Written after each insert into that table, so a
-- worker that takes a partition over reads one small row instead of scanning the raw data for the
-- highest stored offset; on a cluster that scan would span every shard. A point can lag what is
-- stored (a crash between the insert and its point): the reader then scans only the offsets above
-- it, which the min-max index below keeps to the newest granules. A partition written within 30 days
-- keeps a fresh point; the point of one silent for longer expires with its raw rows (the TTL below).
-- A topic recreated (its offsets start again at 0) needs its points deleted:
--   ALTER TABLE {db}.resume_points DELETE WHERE source_table = 'metrics_raw'
CREATE TABLE IF NOT EXISTS {db}.resume_points
(
    source_table LowCardinality(String),
    partition    UInt16,
    src_offset   UInt64,
    stored_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(src_offset)
ORDER BY (source_table, partition)
TTL toDateTime(stored_at) + INTERVAL 30 DAY;

ALTER TABLE {db}.metrics_raw ADD INDEX IF NOT EXISTS src_offset_minmax src_offset TYPE minmax GRANULARITY 1;
ALTER TABLE {db}.logs ADD INDEX IF NOT EXISTS src_offset_minmax src_offset TYPE minmax GRANULARITY 1;
