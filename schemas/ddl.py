"""ClickHouse DDL, applied idempotently and versioned.

Migrations are the numbered ``schemas/clickhouse/NNN_name.sql`` files. Each is
applied once, in order, and recorded in ``{db}.schema_version``; every
statement is also ``IF NOT EXISTS``, so a crash half-way through a migration
is safe to re-run.

The same files serve a cluster: with ``cluster=NAME`` every statement is
rendered by :mod:`schemas.ddl_cluster` (replicated storage under the server's
``{shard}``/``{replica}`` macros, a ``Distributed`` table under the usual name,
``ON CLUSTER``), so code reads and writes the same table names either way.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from schemas.ddl_cluster import render_for_cluster

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class _Commands(Protocol):
    def command(self, cmd: str, *args, **kwargs): ...
    def query(self, q: str, *args, **kwargs): ...


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, db: str, cluster: str | None = None) -> list[str]:
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        single = [s.strip().replace("{db}", db) for s in re.split(r";\s*\n", body + "\n") if s.strip()]
        return _for_topology(single, db, cluster)


def _for_topology(statements: list[str], db: str, cluster: str | None) -> list[str]:
    if not cluster:
        return statements
    return [out for stmt in statements for out in render_for_cluster(stmt, db, cluster)]


def migrations() -> list[Migration]:
    found = []
    for entry in resources.files("schemas.clickhouse").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def check_db_name(db: str) -> str:
    if not _DB_NAME.match(db):
        raise ValueError(f"database name {db!r} must be letters, digits and underscores, starting with a letter")
    return db


def bootstrap_statements(db: str, cluster: str | None = None) -> list[str]:
    """The database and the table that records which migrations are applied."""
    return _for_topology([
        f"CREATE DATABASE IF NOT EXISTS {db}",
        f"CREATE TABLE IF NOT EXISTS {db}.schema_version "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
        "ENGINE = ReplacingMergeTree ORDER BY version",
    ], db, cluster)


def apply(client: _Commands, db: str = "gpuwatch", cluster: str | None = None) -> list[int]:
    """Bring ``db`` up to the newest schema; returns the versions applied now.

    ``cluster`` names a ``<remote_servers>`` cluster of a ClickHouse server
    deployment; leave it empty for chDB or a single server.
    """
    check_db_name(db)
    for stmt in bootstrap_statements(db, cluster):
        client.command(stmt)
    done = {row[0] for row in client.query(f"SELECT version FROM {db}.schema_version").result_rows}
    applied = []
    for mig in migrations():
        if mig.version in done:
            continue
        for stmt in mig.statements(db, cluster):
            client.command(stmt)
        client.command(
            f"INSERT INTO {db}.schema_version (version, name, applied_at) VALUES "
            f"({mig.version}, '{mig.name}', fromUnixTimestamp64Milli({int(time.time() * 1000)}))"
        )
        applied.append(mig.version)
    return applied


def current_version(client: _Commands, db: str = "gpuwatch") -> int:
    rows = client.query(f"SELECT max(version) FROM {check_db_name(db)}.schema_version").result_rows
    return int(rows[0][0] or 0)
