-- Log header fields and template lineage (issue 14; pipelines/logs/headers.py, pipelines/logs/miner.py).
--
-- Header fields: the log path splits each line's header from its message and mines only the message;
-- what the header said is kept in columns of its own. `logged_at` is the timestamp as the line wrote
-- it (formats differ and many omit the year or zone; `ts` stays the time the agent read the line).
ALTER TABLE {db}.logs ADD COLUMN IF NOT EXISTS host LowCardinality(String) DEFAULT '';
ALTER TABLE {db}.logs ADD COLUMN IF NOT EXISTS component LowCardinality(String) DEFAULT '';
ALTER TABLE {db}.logs ADD COLUMN IF NOT EXISTS logged_at String DEFAULT '';

-- Template lineage: a template id is a hash of the template's text, and drain generalises a template
-- as it learns ("worker a ready" -> "worker <*> ready"), so one event's rows can carry several ids.
-- Each generalisation writes (old id -> successor id) for every earlier id of that template, so one
-- lookup (no chains) gives the id of the newest text. Several workers may generalise one template
-- differently; the latest record wins.
CREATE TABLE IF NOT EXISTS {db}.log_template_lineage
(
    template_id UInt64,
    successor   UInt64,
    changed_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(changed_at)
ORDER BY template_id;

CREATE VIEW IF NOT EXISTS {db}.log_template_successor AS
SELECT template_id, argMax(successor, changed_at) AS successor
FROM {db}.log_template_lineage
GROUP BY template_id;

-- Log rows with `event_id`: the stored template id resolved through the lineage. Group by event_id to
-- count one event once however its template generalised while it was being stored.
CREATE VIEW IF NOT EXISTS {db}.logs_resolved AS
SELECT l.*, if(s.successor = 0, l.template_id, s.successor) AS event_id
FROM {db}.logs AS l
LEFT JOIN {db}.log_template_successor AS s ON s.template_id = l.template_id;

-- The templates table with every generalised template folded into its successor: one row per event.
CREATE VIEW IF NOT EXISTS {db}.log_templates_resolved AS
SELECT
    if(s.successor = 0, t.template_id, s.successor) AS template_id,
    argMax(t.text, if(s.successor = 0, 1, 0))       AS text,
    min(t.first_seen)                               AS first_seen,
    max(t.last_seen)                                AS last_seen,
    sum(t.count)                                    AS count,
    any(t.example)                                  AS example,
    groupArrayIf(t.template_id, s.successor != 0)   AS earlier_ids
FROM {db}.log_templates AS t
LEFT JOIN {db}.log_template_successor AS s ON s.template_id = t.template_id
GROUP BY template_id;
