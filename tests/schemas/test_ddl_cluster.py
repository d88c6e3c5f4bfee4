"""The cluster DDL is rendered from the same migrations and parses with ClickHouse's own parser.

chDB cannot run a cluster, but it carries the server's SQL parser: ``formatQuery`` refuses any
statement a server would refuse to parse. The compose file's two-shard profile must define
the cluster, the macros and the Keeper that the rendered DDL relies on.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from schemas import ddl
from schemas.ddl_cluster import LOCAL_SUFFIX, render_for_cluster

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "gpuwatch"


def _cluster_statements(db: str = "gpuwatch") -> list[str]:
    stmts = ddl.bootstrap_statements(db, CLUSTER)
    for mig in ddl.migrations():
        stmts += mig.statements(db, CLUSTER)
    return stmts


def _single_tables(db: str = "gpuwatch") -> set[str]:
    names = set()
    for stmt in ddl.bootstrap_statements(db) + [s for m in ddl.migrations() for s in m.statements(db)]:
        if m := re.match(rf"CREATE TABLE IF NOT EXISTS {db}\.(\w+)", stmt):
            names.add(m.group(1))
    return names


def test_every_cluster_statement_parses_with_clickhouses_parser(store):
    for stmt in _cluster_statements():
        formatted = store.query("SELECT formatQuery({q:String})", parameters={"q": stmt}).rows[0][0]
        assert "ON CLUSTER" in formatted, stmt
    with pytest.raises(Exception, match="Syntax error"):
        store.query("SELECT formatQuery({q:String})", parameters={"q": "CREATE TABLE x ON CLUSTER (a"})


def test_every_table_is_replicated_and_distributed_under_its_own_name():
    stmts = _cluster_statements()
    for table in _single_tables():
        local = [s for s in stmts if s.startswith(f"CREATE TABLE IF NOT EXISTS gpuwatch.{table}{LOCAL_SUFFIX} ")]
        front = [s for s in stmts if s.startswith(f"CREATE TABLE IF NOT EXISTS gpuwatch.{table} ")]
        assert len(local) == 1 and len(front) == 1, table
        assert re.search(r"ENGINE = Replicated\w*MergeTree\('/clickhouse/tables/\{shard\}/gpuwatch/"
                         rf"{table}{LOCAL_SUFFIX}', '\{{replica\}}'", local[0]), local[0]
        assert "non_replicated_deduplication_window" not in local[0]
        assert f"Distributed('{CLUSTER}', 'gpuwatch', '{table}{LOCAL_SUFFIX}', cityHash64(" in front[0]


def test_telemetry_is_sharded_by_node_and_alerts_by_fingerprint():
    stmts = {s.split()[5]: s for s in _cluster_statements() if s.startswith("CREATE TABLE")}
    for table in ("metrics_raw", "features_1m", "anomaly_scores", "logs", "node_events", "heartbeats"):
        assert stmts[f"gpuwatch.{table}"].endswith("cityHash64(node))"), table
    assert stmts["gpuwatch.alerts"].endswith("cityHash64(fingerprint))")


def test_aggregating_engine_keeps_its_arguments_when_replicated():
    sql = ("CREATE TABLE IF NOT EXISTS g.s (k UInt8, v UInt64) ENGINE = SummingMergeTree(v) ORDER BY k")
    local = render_for_cluster(sql, "g", "c")[0]
    assert "ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/g/s_local', '{replica}', v)" in local


def test_a_statement_without_a_cluster_form_is_refused_clearly():
    with pytest.raises(ValueError, match="no cluster form"):
        render_for_cluster("ALTER TABLE g.t DROP COLUMN x", "g", "c")
    with pytest.raises(ValueError, match="cluster name"):
        render_for_cluster("CREATE DATABASE IF NOT EXISTS g", "g", "c'; DROP")


def test_added_columns_reach_storage_and_the_distributed_table():
    stmts = render_for_cluster("ALTER TABLE g.logs ADD COLUMN IF NOT EXISTS host String DEFAULT ''", "g", "c")
    assert stmts == ["ALTER TABLE g.logs_local ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS host String DEFAULT ''",
                     "ALTER TABLE g.logs ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS host String DEFAULT ''"]


def test_single_node_ddl_is_unchanged_without_a_cluster():
    for mig in ddl.migrations():
        assert not any("ON CLUSTER" in s or "Distributed" in s for s in mig.statements("gpuwatch"))


def test_cluster_needs_a_server_dsn():
    from pydantic import ValidationError

    from pipelines.settings import CommonSettings

    with pytest.raises(ValidationError, match="needs a ClickHouse server"):
        CommonSettings(clickhouse_cluster="gpuwatch", _env_file=None)
    ok = CommonSettings(clickhouse_cluster="gpuwatch", clickhouse_dsn="http://ch:8123", _env_file=None)
    assert ok.clickhouse_cluster == "gpuwatch"


def test_compose_two_shard_profile_defines_what_the_cluster_ddl_needs():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    shards = {n: s for n, s in services.items() if "cluster" in s.get("profiles", []) and n.startswith("clickhouse-s")}
    assert len(shards) >= 2, "the cluster profile runs two ClickHouse servers"
    assert any("keeper" in n for n, s in services.items() if "cluster" in s.get("profiles", []))
    pipeline = services["pipeline-cluster"]
    assert pipeline["environment"]["GPUWATCH_CLICKHOUSE_CLUSTER"] == CLUSTER

    cluster_xml = ET.parse(ROOT / "infra/clickhouse/cluster.d/remote_servers.xml").getroot()
    cluster = cluster_xml.find(f"remote_servers/{CLUSTER}")
    assert cluster is not None, f"<remote_servers> must define {CLUSTER}"
    hosts = [r.findtext("host") for r in cluster.iter("replica")]
    assert len(cluster.findall("shard")) == 2 and set(hosts) <= set(services)
    assert all(s.findtext("internal_replication") == "true" for s in cluster.findall("shard"))
    assert cluster_xml.find("zookeeper/node/host").text in services
    for name, svc in shards.items():
        mounts = " ".join(svc["volumes"])
        macros = ET.parse(ROOT / "infra/clickhouse/cluster.d" / f"macros-{name}.xml").getroot()
        assert macros.findtext("macros/shard") and macros.findtext("macros/replica") == name
        assert f"macros-{name}.xml" in mounts and "remote_servers.xml" in mounts


def test_a_skip_index_goes_on_the_storage_not_the_distributed_table():
    stmts = render_for_cluster("ALTER TABLE g.logs ADD INDEX IF NOT EXISTS i src_offset TYPE minmax GRANULARITY 1",
                               "g", "c")
    assert stmts == ["ALTER TABLE g.logs_local ON CLUSTER 'c' ADD INDEX IF NOT EXISTS i src_offset TYPE minmax GRANULARITY 1"]
