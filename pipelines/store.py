"""One way into ClickHouse, embedded (chDB) or a server, through clickhouse-connect.

``chdb:///path`` opens the real ClickHouse engine in-process; ``http(s)://``
reaches a server. The same DDL and the same code serve both.

chDB allows one process per data path, so the process that runs the pipeline
*owns* the path and records itself in an owner file beside the data. Other
processes (``gpuwatch query``) find the owner and ask it over HTTP instead of
opening the path themselves; see :class:`ChdbOwner`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import orjson

from schemas import ddl

_READ_ONLY_START = re.compile(r"^\s*(\(|(select|with|show|describe|desc|explain|exists)\b)", re.I)


class StoreError(RuntimeError):
    """ClickHouse refused or could not be reached; the text says which and why."""


class ReadOnlyViolation(StoreError):
    """A statement sent to a read-only endpoint would have changed data."""


def check_read_only(sql: str) -> str:
    """Accept one read-only statement; refuse anything else with the reason.

    >>> check_read_only("SELECT 1")
    'SELECT 1'
    >>> check_read_only("-- mean time to acknowledge\\nSELECT 1")
    'SELECT 1'
    >>> check_read_only("DROP TABLE x")
    Traceback (most recent call last):
    ...
    pipelines.store.ReadOnlyViolation: only read-only statements (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS) are allowed, not DROP
    """
    stripped = _strip_comments(sql).strip().rstrip(";").strip()
    if not stripped:
        raise ReadOnlyViolation("empty query")
    bare = _strip_literals(stripped)
    if ";" in bare:
        raise ReadOnlyViolation("one statement at a time")
    if not _READ_ONLY_START.match(stripped):
        word = stripped.split(None, 1)[0][:40]
        raise ReadOnlyViolation(
            f"only read-only statements (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS) are allowed, not {word}")
    # Found on the text, not on query_policy's EXPLAIN AST: the driver appends a FORMAT of its own to every
    # query, the EXPLAIN too, and two FORMATs are a syntax error before any AST exists.
    fmt = _format_clause(bare)
    if fmt:  # ClickHouse's complaint would name the driver's FORMAT Native
        raise StoreError(f"leave out FORMAT {fmt}: answers come as a table, or --format json, csv or "
                         "table (the /query API answers JSON)")
    return stripped


_FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+(\w+)\s*$", re.I)
_COMMENTS = re.compile(r"(?:--|#)[^\n]*|/\*.*?\*/", re.S)
#: Words after which ``format x`` is a column or table called format with an alias, not the clause.
_NOT_A_CLAUSE_AFTER = {"SELECT", "FROM", "JOIN", "BY", "AS", "DISTINCT", "AND", "OR", "NOT", "WHERE", "ON", "THEN",
                       "ELSE", "WHEN"}


def _format_clause(bare: str) -> str | None:
    """The format named by a trailing ``FORMAT name`` clause of a query whose string literals are blanked.

    >>> _format_clause("SELECT 1 FORMAT TSV"), _format_clause("SELECT 1 -- see FORMAT JSON")
    ('TSV', None)
    >>> _format_clause("SELECT a FROM t ORDER BY format DESC"), _format_clause("SELECT format f FROM t")
    (None, None)
    """
    text = _COMMENTS.sub(" ", bare).rstrip()
    m = _FORMAT_CLAUSE.search(text)
    if not m or m.group(1).upper() in ("ASC", "DESC"):
        return None
    before = text[:m.start()].rstrip()
    if not before or before[-1] in ",.(=<>+-*/" or before.split()[-1].upper() in _NOT_A_CLAUSE_AFTER:
        return None
    return m.group(1)


def _strip_comments(sql: str) -> str:
    """Leading ``--`` and ``/* */`` comments; a query file may open with a comment."""
    m = _LEADING_COMMENTS.match(sql)  # one pass: removing one comment per pass was quadratic (1 MB of /**/: 11 s)
    return sql[m.end():] if m else sql


_LEADING_COMMENTS = re.compile(r"(?:\s*(?:--[^\n]*(?:\n|$)|/\*.*?\*/))+", re.S)


def _strip_literals(sql: str) -> str:
    return re.sub(r"'(?:[^'\\]|\\.)*'", "''", sql)


def is_chdb(dsn: str) -> bool:
    return dsn.startswith("chdb://")


def chdb_path(dsn: str) -> Path | None:
    """The data directory of a ``chdb:///path`` DSN (``None`` for in-memory)."""
    rest = dsn[len("chdb://"):]
    return Path(rest) if rest else None


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r)) for r in self.rows]


class Store:
    """A ClickHouse client bound to the gpuwatch database.

    Calls are serialised with a lock: chDB's embedded engine and a single HTTP
    session are both safest used by one thread at a time, and the pipeline calls
    from worker threads to keep its event loop free.
    """

    def __init__(self, dsn: str, database: str = "gpuwatch", cluster: str = "") -> None:
        import clickhouse_connect

        self.dsn = dsn
        self.database = ddl.check_db_name(database)
        if cluster and is_chdb(dsn):
            raise StoreError("a ClickHouse cluster needs a server DSN (http(s)://), not chdb://")
        self.cluster = cluster
        # On a cluster, writes go through Distributed tables: insert in the foreground, so a batch
        # is stored on its shards (and deduplicated there) before the offsets it covers are acked.
        session = {"distributed_foreground_insert": 1} if cluster else None
        self._lock = threading.Lock()
        if is_chdb(dsn):
            path = chdb_path(dsn)
            if path is not None:
                path.mkdir(parents=True, exist_ok=True)
        try:
            # A server that does not answer is one clear error within seconds, not a hang at start.
            extra = {} if is_chdb(dsn) else {"connect_timeout": 5}
            with driver_quiet():
                self._client = clickhouse_connect.get_client(dsn=dsn, settings=session, **extra)
        except Exception as e:  # the driver raises many types; the message is what matters
            raise StoreError(f"cannot open ClickHouse at {redact(dsn)}: {connect_failure(e)}") from None

    def apply_schema(self) -> list[int]:
        with self._lock:
            return ddl.apply(self._client, self.database, self.cluster or None)

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str],
               dedup_token: str | None = None) -> None:
        if not rows:
            return
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else None
        if getattr(rows, "column_oriented", False):  # pipelines.sinks.tables.ColumnRows (the logs table)
            with self._lock:
                self._client.insert(f"{self.database}.{table}", rows.columns, column_names=list(columns),
                                    column_oriented=True, settings=settings)
            return
        with self._lock:
            self._client.insert(f"{self.database}.{table}", rows, column_names=list(columns), settings=settings)

    def insert_arrow(self, table: str, arrow_table: Any, dedup_token: str | None = None) -> None:
        """Insert an Arrow table whose column names are the table's: no per-row Python."""
        if not arrow_table.num_rows:
            return
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else None
        with self._lock:
            self._client.insert_arrow(f"{self.database}.{table}", arrow_table, settings=settings)

    def query(self, sql: str, parameters: dict | None = None, read_only: bool = True) -> QueryResult:
        """gpuwatch's own reads on the writer's session. User SQL never comes here: it runs in
        :class:`pipelines.query_sandbox.QuerySandbox`, on a session of its own. No settings are
        sent: on chDB a per-call setting on a non-SELECT is applied with ``SET`` and restored after,
        and a ``readonly`` that cannot be restored would leave the writer read-only."""
        if read_only:
            sql = check_read_only(sql)
        try:
            with self._lock:
                r = self._client.query(no_limit_zero_probe(sql), parameters=parameters)
        except ReadOnlyViolation:
            raise
        except Exception as e:
            raise StoreError(str(e).strip().splitlines()[0][:2000]) from None
        return QueryResult(list(r.column_names), [t.name for t in r.column_types], list(r.result_rows))

    def command(self, sql: str) -> Any:
        with self._lock:
            return self._client.command(sql)

    def close(self) -> None:
        with self._lock:
            try:
                self._client.close()
            except Exception:
                pass


_TRAILING_LIMIT_ZERO = re.compile(r"(LIMIT\s+0)(\s*(?:;\s*)*(?:--[^\n]*\s*)*)$", re.IGNORECASE)


def no_limit_zero_probe(sql: str) -> str:
    """``LIMIT 0 OFFSET 0`` for a trailing ``LIMIT 0``. The driver takes a query ending in LIMIT 0 for its own
    metadata probe and fails with "LIMIT 0 metadata probe unexpectedly returned rows"; an empty answer is right.

    >>> no_limit_zero_probe("SELECT 1 LIMIT 0;")
    'SELECT 1 LIMIT 0 OFFSET 0;'
    >>> no_limit_zero_probe("SELECT 1 LIMIT 10")
    'SELECT 1 LIMIT 10'
    """
    return _TRAILING_LIMIT_ZERO.sub(r"\1 OFFSET 0\2", sql)


@contextlib.contextmanager
def driver_quiet():
    """The driver logs a failed connect itself before raising; the raised error is the one line we print."""
    driver_log = logging.getLogger("clickhouse_connect")
    level = driver_log.level
    driver_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        driver_log.setLevel(level)


_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


def _wide_ints_as_text(v: Any) -> Any:
    if type(v) is int and not _INT64_MIN <= v <= _UINT64_MAX:
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_wide_ints_as_text(x) for x in v]
    if isinstance(v, dict):
        return {k: _wide_ints_as_text(x) for k, x in v.items()}
    return v


def rows_json(payload: Any, default: Any = str) -> bytes:
    """A query's answer as JSON, for the CLI and ``/query`` alike.

    ClickHouse has 128- and 256-bit integers and orjson encodes 64 bits at most: such values
    come back as their exact decimal text (the answer is walked again only when one is there).
    Anything else orjson cannot encode goes through ``default``.

    >>> rows_json({"rows": [[2**64, 1]]})
    b'{"rows":[["18446744073709551616",1]]}'
    """
    opts = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    try:
        return orjson.dumps(payload, default=default, option=opts)
    except TypeError:  # "Integer exceeds 64-bit range"
        return orjson.dumps(_wide_ints_as_text(payload), default=default, option=opts)


def first_line(e: BaseException, limit: int = 2000) -> str:
    """An error as one line a log or a user can read: its first line, or its type when it says nothing.

    >>> first_line(RuntimeError("no leader\\nstack..."), 5), first_line(TimeoutError())
    ('no le', 'TimeoutError')
    >>> first_line(RuntimeError("Code: 164. DB::Exception: Code: 164. DB::Exception: Cannot modify"))
    'Code: 164. DB::Exception: Cannot modify'
    """
    text = str(e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    # chDB wraps a server exception in its own with the same code: "Code: 164. DB::Exception: Code: 164. ..."
    return re.sub(r"^(Code: \d+\. DB::Exception: )\1", r"\1", line)[:limit]


def connect_failure(e: Exception) -> str:
    """The reason a connect failed, without the driver's retry and URL noise.

    >>> connect_failure(OSError('Error HTTPConnectionPool(...): Max retries exceeded (Caused by '
    ...                         'NewConnectionError("...: Failed to establish a new connection: [Errno 111] '
    ...                         'Connection refused"))'))
    'Connection refused'
    """
    text = str(e).strip()
    m = re.search(r"\[Errno -?\d+\] ([^\"')]+)", text)
    if m:
        return m.group(1).strip()
    return first_line(e, 300)


def redact(url: str) -> str:
    """Hide credentials in a URL before it reaches a log or an error.

    >>> redact("https://alice:s3cret@ch.example:8443/db")
    'https://alice:***@ch.example:8443/db'
    """
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


class ChdbOwner:
    """The owner file that tells other processes who holds a chDB path, and where to ask.

    Written by the pipeline when it opens the path, removed when it stops; a
    stale file (its process gone) is ignored.
    """

    FILENAME = "gpuwatch-owner.json"

    def __init__(self, path: Path) -> None:
        self.file = Path(path) / self.FILENAME

    def claim(self, web_url: str) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"pid": os.getpid(), "started": _process_start(os.getpid()),
                                      "web_url": web_url}))
        tmp.replace(self.file)

    def release(self) -> None:
        try:
            if orjson.loads(self.file.read_bytes()).get("pid") == os.getpid():
                self.file.unlink()
        except (OSError, ValueError):
            pass

    def current(self) -> dict | None:
        """The live owner's record, or None if nobody holds the path."""
        try:
            rec = orjson.loads(self.file.read_bytes())
            os.kill(int(rec["pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        started = rec.get("started")
        if started is not None and started != _process_start(int(rec["pid"])):
            return None  # the pid lives on in another process (after a crash or a reboot): the file is stale
        return rec


def _process_start(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (/proc/PID/stat field 22): with the pid, it names one
    process, so a reused pid is not taken for the owner. None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(") ", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None
