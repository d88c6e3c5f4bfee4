"""ClickHouse DDL, applied idempotently and versioned.

Migrations are the numbered ``schemas/clickhouse/NNN_name.sql`` files. Each is
applied once, in order, and recorded in ``{db}.schema_version``; every
statement is also ``IF NOT EXISTS``, so a crash half-way through a migration
is safe to re-run.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

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

    def statements(self, db: str) -> list[str]:
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip().replace("{db}", db) for s in re.split(r";\s*\n", body + "\n") if s.strip()]


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


def apply(client: _Commands, db: str = "gpuwatch") -> list[int]:
    """Bring ``db`` up to the newest schema; returns the versions applied now."""
    check_db_name(db)
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_version "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query(f"SELECT version FROM {db}.schema_version").result_rows}
    applied = []
    for mig in migrations():
        if mig.version in done:
            continue
        for stmt in mig.statements(db):
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
