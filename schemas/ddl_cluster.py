"""Render the single-node DDL for a ClickHouse cluster: one definition, two shapes.

The numbered migrations in ``schemas/clickhouse/`` are written once, for one
server (and chDB). On a cluster every table becomes a pair:

- ``{db}.NAME_local``: the storage, ``Replicated*MergeTree`` under the
  ``{shard}``/``{replica}`` macros each server defines, created ``ON CLUSTER``;
- ``{db}.NAME``: a ``Distributed`` table over the locals, with the name the
  code already reads and writes, sharded by a hash of the table's first
  ``ORDER BY`` column (the node for telemetry, the fingerprint for alerts), so
  one node's rows live on one shard.

The sharding key is deterministic, so a replayed batch splits into the same
per-shard blocks; with foreground (synchronous) distributed inserts each shard's
replicated table drops a block it has already seen (the insert deduplication
token, or the block's hash), which keeps the sink's exactly-once promise.

    >>> sql = '''CREATE TABLE IF NOT EXISTS {db}.t
    ... (
    ...     node String,
    ...     ts   DateTime
    ... )
    ... ENGINE = MergeTree
    ... ORDER BY (node, ts)
    ... SETTINGS non_replicated_deduplication_window = 1000'''
    >>> for stmt in render_for_cluster(sql.replace("{db}", "gw"), "gw", "gpuwatch"):
    ...     print(stmt.splitlines()[0], "|", stmt.splitlines()[-1])
    CREATE TABLE IF NOT EXISTS gw.t_local ON CLUSTER 'gpuwatch' | SETTINGS replicated_deduplication_window = 1000
    CREATE TABLE IF NOT EXISTS gw.t ON CLUSTER 'gpuwatch' AS gw.t_local | ENGINE = Distributed('gpuwatch', 'gw', 't_local', cityHash64(node))
"""

from __future__ import annotations

import re

_CLUSTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_CREATE_DB = re.compile(r"^CREATE DATABASE IF NOT EXISTS (?P<db>\w+)\s*$", re.I)
_CREATE_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (?P<db>\w+)\.(?P<name>\w+)\s*(?P<body>\(.*\))\s*"
    r"ENGINE\s*=\s*(?P<engine>\w*MergeTree)\b(?P<args>\([^)]*\))?(?P<rest>.*)$", re.I | re.S)
_ALTER_ADD = re.compile(r"^ALTER TABLE (?P<db>\w+)\.(?P<name>\w+)\s+(?P<change>ADD COLUMN IF NOT EXISTS .*)$",
                        re.I | re.S)
_ALTER_ADD_INDEX = re.compile(r"^ALTER TABLE (?P<db>\w+)\.(?P<name>\w+)\s+(?P<change>ADD INDEX IF NOT EXISTS .*)$",
                              re.I | re.S)
_CREATE_VIEW = re.compile(r"^CREATE VIEW IF NOT EXISTS (?P<db>\w+)\.(?P<name>\w+)\s+AS\s", re.I)
_ORDER_BY = re.compile(r"\bORDER BY\s+\(?\s*(?P<first>\w+)", re.I)
_NON_REPLICATED_WINDOW = re.compile(r"\bnon_replicated_deduplication_window\b", re.I)

#: Suffix of the storage table behind each Distributed table.
LOCAL_SUFFIX = "_local"


def check_cluster_name(cluster: str) -> str:
    if not _CLUSTER_NAME.match(cluster):
        raise ValueError(f"cluster name {cluster!r} must be letters, digits, '_', '.' or '-', "
                         "as defined under <remote_servers> in the server config")
    return cluster


def render_for_cluster(stmt: str, db: str, cluster: str) -> list[str]:
    """The statements that stand for one single-node statement on ``cluster``."""
    cluster = check_cluster_name(cluster)
    on = f"ON CLUSTER '{cluster}'"
    if m := _CREATE_DB.match(stmt):
        return [f"CREATE DATABASE IF NOT EXISTS {m['db']} {on}"]
    if m := _CREATE_TABLE.match(stmt):
        return _table_pair(m, cluster, on)
    if m := _ALTER_ADD.match(stmt):
        # A new column goes on the storage and on the Distributed table in front of it.
        return [f"ALTER TABLE {m['db']}.{m['name']}{LOCAL_SUFFIX} {on} {m['change']}",
                f"ALTER TABLE {m['db']}.{m['name']} {on} {m['change']}"]
    if m := _ALTER_ADD_INDEX.match(stmt):
        # A data-skipping index belongs to the storage; the Distributed table holds no data.
        return [f"ALTER TABLE {m['db']}.{m['name']}{LOCAL_SUFFIX} {on} {m['change']}"]
    if m := _CREATE_VIEW.match(stmt):
        # A view over the Distributed table reads every shard; it only needs to exist on every server.
        return [stmt[:m.end("name")] + f" {on}" + stmt[m.end("name"):]]
    if stmt.lstrip().upper().startswith(("INSERT", "SELECT")):
        return [stmt]
    raise ValueError(f"no cluster form for statement: {stmt.splitlines()[0][:120]}")


def _table_pair(m: re.Match, cluster: str, on: str) -> list[str]:
    db, name, rest = m["db"], m["name"], m["rest"]
    local = f"{name}{LOCAL_SUFFIX}"
    engine_args = m["args"][1:-1].strip() if m["args"] else ""
    zk_path = f"'/clickhouse/tables/{{shard}}/{db}/{local}', '{{replica}}'"
    replicated = f"Replicated{m['engine']}({zk_path}{', ' + engine_args if engine_args else ''})"
    rest = _NON_REPLICATED_WINDOW.sub("replicated_deduplication_window", rest)
    order = _ORDER_BY.search(rest)
    shard_key = f"cityHash64({order['first']})" if order else "rand()"
    storage = f"CREATE TABLE IF NOT EXISTS {db}.{local} {on}\n{m['body']}\nENGINE = {replicated}{rest}"
    distributed = (f"CREATE TABLE IF NOT EXISTS {db}.{name} {on} AS {db}.{local}\n"
                   f"ENGINE = Distributed('{cluster}', '{db}', '{local}', {shard_key})")
    return [storage, distributed]
