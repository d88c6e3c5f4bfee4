"""``gpuwatch query "SQL"``: read-only SQL on the store, whether or not the pipeline runs.

chDB lets one process open a data path. If a pipeline owns the path, the
query goes to the pipeline's ``/query`` endpoint; otherwise this process opens
the path itself. A server DSN (``http(s)://``) is always queried directly.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys

from pipelines.cli import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("query", help="run read-only SQL on the gpuwatch store",
                       description="Read-only SQL (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) on ClickHouse.")
    p.add_argument("sql", help='the query, e.g. "SELECT count() FROM gpuwatch.metrics_raw"')
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--clickhouse", metavar="DSN", help="chdb:///path or http(s)://... (default from settings)")
    p.set_defaults(func=run)


def fetch(sql: str, dsn: str, database: str = "gpuwatch", settings=None) -> tuple[list[str], list[list]]:
    """Columns and rows of a read-only query, through the owning pipeline if there is one.

    Either way the query runs in a :class:`~pipelines.query_sandbox.QuerySandbox`
    with the limits of ``settings`` (``GPUWATCH_QUERY_*``).
    """
    from pipelines.query_sandbox import QueryLimits, QuerySandbox
    from pipelines.settings import CommonSettings
    from pipelines.store import ChdbOwner, StoreError, chdb_path, check_read_only, is_chdb

    settings = settings or CommonSettings()
    limits = QueryLimits.from_settings(settings)
    check_read_only(sql)
    if is_chdb(dsn) and chdb_path(dsn) is not None:
        owner = ChdbOwner(chdb_path(dsn)).current()
        if owner:
            import httpx

            token = settings.query_token.get_secret_value() if settings.query_token is not None else ""
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            try:
                r = httpx.post(f"{owner['web_url']}/query", json={"sql": sql}, headers=headers,
                               timeout=(limits.timeout_s or 600) + 30)
            except httpx.HTTPError as e:
                owner_file = ChdbOwner(chdb_path(dsn)).file
                raise StoreError(f"the pipeline (pid {owner['pid']}) owns {chdb_path(dsn)} "
                                 f"but did not answer at {owner['web_url']}: {e} (if no pipeline runs there, "
                                 f"remove {owner_file})") from None
            try:
                body = r.json()
            except ValueError:
                body = {"error": r.text[:500]}
            if r.status_code != 200:
                raise StoreError(body.get("error", r.text))
            return body["columns"], body["rows"]
        path = chdb_path(dsn)
        if not path.exists():
            raise StoreError(f"no gpuwatch data at {path} yet; run the pipeline first")
        if not (path / "metadata").is_dir() and (not path.is_dir() or any(path.iterdir())):
            # chDB would make its directories among whatever the directory already holds
            raise StoreError(f"no gpuwatch data at {path} (not a ClickHouse data directory)")
    res = QuerySandbox(dsn, database, limits).run(sql)
    from pipelines.web import jsonable

    return res.columns, [[jsonable(v) for v in row] for row in res.rows]


_NAIVE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$")


def _cell(v) -> str:
    """A value as table text; gpuwatch stores times in UTC, and a time without a zone says so (``Z``)."""
    if v is None:
        return ""
    text = str(v)
    return text + "Z" if _NAIVE_TIME.match(text) else text


def render(columns: list[str], rows: list[list], fmt: str, out=sys.stdout) -> None:
    if fmt == "json":
        from pipelines.store import rows_json

        out.write(rows_json([dict(zip(columns, r)) for r in rows]).decode() + "\n")
    elif fmt == "csv":
        w = csv.writer(out)
        w.writerow(columns)
        w.writerows(rows)
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        from pipelines.notify.free_text import printable

        # Cells are Text, not markup: data is shown as it is (no ':x:' emoji, no '[red]' styling).
        t = Table(show_lines=False)
        for c in columns:
            t.add_column(Text(c))
        for r in rows:
            t.add_row(*(Text(printable(_cell(v))) for v in r))  # a stored escape sequence is shown, not obeyed
        Console(file=out, width=200, emoji=False, highlight=False).print(t)
        out.write(f"{len(rows)} row{'s' if len(rows) != 1 else ''}\n")


def run(args: argparse.Namespace) -> int:
    from pipelines.settings import CommonSettings
    from pipelines.store import StoreError

    settings = CommonSettings(**({"clickhouse_dsn": args.clickhouse} if args.clickhouse else {}))
    try:
        columns, rows = fetch(args.sql, settings.query_dsn(), settings.clickhouse_database, settings)
    except StoreError as e:
        raise UsageError(str(e)) from None
    render(columns, rows, args.format)
    return 0
