-- Log templates mined from the log stream (pipelines/logs).
--
-- Every log processor batch writes one row per template it saw: the template's
-- text, the first and last time it saw it, and how many lines it matched (a
-- delta, not a running total). Many workers write the same template
-- concurrently, each knowing only its own share, so a ReplacingMergeTree
-- (last write wins) would keep one worker's partial count. An
-- AggregatingMergeTree with SimpleAggregateFunction columns folds the rows of a
-- template on merge instead: min(first_seen), max(last_seen), sum(count). Until
-- a merge happens several rows may exist per template, so readers aggregate
-- (or read the log_templates_current view, which does). A replayed batch is
-- dropped by the insert deduplication token (Kafka partition and offsets), the
-- same as its log rows.
CREATE TABLE IF NOT EXISTS {db}.log_templates
(
    template_id UInt64,
    text        SimpleAggregateFunction(any, String),
    first_seen  SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen   SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    count       SimpleAggregateFunction(sum, UInt64),
    example     SimpleAggregateFunction(any, String)
)
ENGINE = AggregatingMergeTree
ORDER BY template_id
SETTINGS non_replicated_deduplication_window = 1000;

-- One row per template, merged or not: what operators and the explainer read.
CREATE VIEW IF NOT EXISTS {db}.log_templates_current AS
SELECT
    template_id,
    any(text)       AS text,
    min(first_seen) AS first_seen,
    max(last_seen)  AS last_seen,
    sum(count)      AS count,
    any(example)    AS example
FROM {db}.log_templates
GROUP BY template_id;
