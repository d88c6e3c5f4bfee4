"""The ClickHouse DDL applies on the real engine (chDB), is versioned, and re-applies as a no-op."""

from __future__ import annotations

from schemas import ddl


def test_schema_applies_once_and_records_its_version(store):
    versions = [m.version for m in ddl.migrations()]
    assert versions == sorted(versions) and versions[0] == 1
    assert ddl.current_version(store._client, store.database) == versions[-1]
    assert ddl.apply(store._client, store.database) == []  # already applied: nothing to do
    tables = {r[0] for r in store.query(f"SHOW TABLES FROM {store.database}").rows}
    assert {"metrics_raw", "features_1m", "anomaly_scores", "alerts", "logs", "node_events", "heartbeats",
            "schema_version"} <= tables


def test_raw_metrics_have_a_ttl(store):
    ddl_text = store.query(f"SHOW CREATE TABLE {store.database}.metrics_raw").rows[0][0]
    assert "TTL" in ddl_text and "INTERVAL 30 DAY" in ddl_text.replace("toIntervalDay(30)", "INTERVAL 30 DAY")


def test_database_names_are_checked():
    import pytest

    with pytest.raises(ValueError, match="letters, digits"):
        ddl.check_db_name("gpu; DROP TABLE x")


def test_bulk_tables_keep_label_keys_as_plain_strings(store):
    """A LowCardinality key type nested in a Map made the bulk tables' merges cost twice their CPU (issue 10):
    every merge re-mapped each part's key dictionary. ``labels['job']`` reads the same either way."""
    for table in ("metrics_raw", "logs"):
        types = dict(store.query(f"SELECT name, type FROM system.columns WHERE database = '{store.database}' "
                                 f"AND table = '{table}'").rows)
        assert types["labels"] == "Map(String, String)", table
