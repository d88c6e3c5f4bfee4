"""User SQL on its own short-lived, read-only session with limits the engine enforces.

Every query (``gpuwatch query``, ``POST /query``) opens a fresh ClickHouse
session, runs one statement and closes it. Nothing it does can reach the
writer: the writer's client, its session settings and its lock are never
touched, so a rejected ``INSERT`` cannot leave the writer read-only, and a
long query never holds up an insert (chDB runs queries from different
connections in parallel and releases the GIL while it works).

The session carries ``readonly=1`` and the limits below from the moment it
opens, so the statement cannot lift them (``SETTINGS max_execution_time=0``
is refused by the engine). :mod:`pipelines.query_policy` refuses what
``readonly`` does not stop in embedded ClickHouse (``file()``, ``url()``,
``INTO OUTFILE`` ...).

On a ClickHouse server (``http(s)://`` DSN) the same limits go with each
request, and queries use ``GPUWATCH_CLICKHOUSE_QUERY_DSN``: a server user
with a read-only profile and ``SELECT`` grants only (``analyst`` in
``infra/clickhouse/users.d``), so the server itself refuses the rest.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from pipelines.query_policy import QueryRejected, check_ast
from pipelines.store import (QueryResult, StoreError, check_read_only, chdb_path, connect_failure, driver_quiet,
                             first_line, is_chdb, no_limit_zero_probe, redact)


@dataclass(frozen=True)
class QueryLimits:
    """Per-query limits; ClickHouse stops the query when one is exceeded. 0 means no limit."""

    timeout_s: float = 30.0
    max_memory_bytes: int = 1_000_000_000
    max_rows_to_read: int = 10_000_000_000
    max_result_rows: int = 1_000_000
    #: Cores one query may use; by default half of them, so the writer keeps the rest.
    max_threads: int = max(1, (os.cpu_count() or 2) // 2)
    max_result_bytes: int = 100_000_000

    @classmethod
    def from_settings(cls, settings: Any) -> "QueryLimits":
        return cls(settings.query_timeout_s, settings.query_max_memory_bytes, settings.query_max_rows_to_read,
                   settings.query_max_result_rows, settings.query_max_threads or cls.max_threads,
                   settings.query_max_result_bytes)

    def clickhouse_settings(self, readonly: int = 1) -> dict[str, Any]:
        return {"readonly": readonly, "max_execution_time": self.timeout_s, "max_memory_usage": self.max_memory_bytes,
                "max_rows_to_read": self.max_rows_to_read, "max_result_rows": self.max_result_rows,
                "max_result_bytes": self.max_result_bytes, "max_threads": self.max_threads}


class QuerySandbox:
    """Runs user SQL, one statement per call, each on a ClickHouse session of its own.

    At most ``max_concurrent`` queries run at once, so a burst of queries
    cannot take every core, nor ``max_memory_usage`` times that much memory
    from the pipeline beside it.
    """

    def __init__(self, dsn: str, database: str = "gpuwatch", limits: QueryLimits | None = None,
                 max_concurrent: int = 2) -> None:
        self.dsn = dsn
        self.database = database
        self.limits = limits or QueryLimits()
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._table_functions: frozenset[str] | None = None

    def run(self, sql: str) -> QueryResult:
        statement = check_read_only(sql)
        if not self._slots.acquire(timeout=self.limits.timeout_s or None):
            raise StoreError("too many queries are running; try again shortly")
        try:
            client = self._open()
            try:
                ast = [r[0] for r in self._query(client, f"EXPLAIN AST {statement}").result_rows]
                check_ast(ast, self._known_table_functions(client))
                r = self._query(client, statement)
            finally:
                client.close()
        finally:
            self._slots.release()
        return QueryResult(list(r.column_names), [t.name for t in r.column_types], list(r.result_rows))

    def _open(self) -> Any:
        import clickhouse_connect

        try:
            if is_chdb(self.dsn):
                path = chdb_path(self.dsn)
                return clickhouse_connect.get_client(
                    dsn=f"chdb://{path}" if path else "chdb://memory",
                    chdb_options=self.limits.clickhouse_settings())
            with driver_quiet():  # the driver logs its own "Unexpected Http Driver Exception" line too
                return clickhouse_connect.get_client(dsn=self.dsn, connect_timeout=5)
        except Exception as e:  # the driver raises many types; the message is what matters
            raise StoreError(f"cannot open ClickHouse at {redact(self.dsn)}: {connect_failure(e)}") from None

    def _query(self, client: Any, sql: str) -> Any:
        # A server's read-only profile (readonly=2, as infra/clickhouse gives `analyst`) refuses a change
        # of `readonly` itself, so requests say 2; query_policy refuses a SETTINGS clause either way.
        settings = None if is_chdb(self.dsn) else self.limits.clickhouse_settings(readonly=2)
        try:
            return client.query(no_limit_zero_probe(sql), settings=settings)
        except QueryRejected:
            raise
        except Exception as e:
            message = first_line(e)
            if "(READONLY)" in message or "(ACCESS_DENIED)" in message:
                raise QueryRejected(message) from None  # refused by the engine: the same answer as ours
            raise StoreError(_explain_limit(message)) from None

    def _known_table_functions(self, client: Any) -> frozenset[str]:
        if self._table_functions is None:
            rows = self._query(client, "SELECT name FROM system.table_functions").result_rows
            self._table_functions = frozenset(r[0] for r in rows)
        return self._table_functions


#: ClickHouse's error names for a limit hit, and the setting that raises that limit.
_LIMIT_SETTINGS = {
    "TIMEOUT_EXCEEDED": "GPUWATCH_QUERY_TIMEOUT_S",
    "MEMORY_LIMIT_EXCEEDED": "GPUWATCH_QUERY_MAX_MEMORY_BYTES",
    "TOO_MANY_ROWS": "GPUWATCH_QUERY_MAX_ROWS_TO_READ",
    "TOO_MANY_ROWS_OR_BYTES": "GPUWATCH_QUERY_MAX_RESULT_ROWS",
}


def _explain_limit(message: str) -> str:
    """Name the gpuwatch setting behind a limit the query hit.

    >>> _explain_limit("Code: 159. DB::Exception: Timeout exceeded: elapsed 5 s. (TIMEOUT_EXCEEDED)")
    'query stopped by its limit (GPUWATCH_QUERY_TIMEOUT_S): Code: 159. DB::Exception: Timeout exceeded: elapsed 5 s. (TIMEOUT_EXCEEDED)'
    """
    for name, setting in _LIMIT_SETTINGS.items():
        if f"({name})" in message:
            if name == "TOO_MANY_ROWS_OR_BYTES" and "max bytes" in message:
                setting = "GPUWATCH_QUERY_MAX_RESULT_BYTES"
            return f"query stopped by its limit ({setting}): {message}"
    return message
