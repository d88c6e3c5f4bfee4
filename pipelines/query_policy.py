"""What user SQL may reach: only the gpuwatch store, never files, hosts, other databases or programs.

ClickHouse's ``readonly=1`` (set on every sandboxed session, see
:mod:`pipelines.query_sandbox`) stops writes, DDL, ``SET`` and table functions
such as ``SELECT * FROM file(...)``. Embedded ClickHouse (chDB, which is
clickhouse-local) does not stop the rest, measured on chDB 4.4 / ClickHouse
26.9: the *function* ``file('/etc/passwd')`` reads any file whatever
``user_files_path`` says, ``DESCRIBE url(...)`` sends the request,
``INTO OUTFILE`` writes a file, and the only user (``default``, from the
read-only ``users_xml`` storage) holds every grant and cannot be restricted
(``CREATE USER`` and ``REVOKE`` are refused).

So the statement is also checked here, on ClickHouse's *own* parse of it
(``EXPLAIN AST``), not on the text: every function called anywhere in the
tree, and every clause hung on the statement itself. Table functions are
allowed from a short list of those that generate data in memory; any other
name the engine lists in ``system.table_functions`` is refused, so a table
function added by a later ClickHouse is refused until someone adds it here.
"""

from __future__ import annotations

import re
from typing import Iterable

from pipelines.store import ReadOnlyViolation

#: Table functions that only generate or re-read data inside the engine.
SAFE_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries", "primes", "values",
    "null", "view", "format", "generaterandom", "merge",
})

#: Ordinary functions (not table functions) that read outside the engine.
REACHING_FUNCTIONS = frozenset({"file"})

#: Statements a query may be: reads and descriptions only.
ALLOWED_STATEMENTS = re.compile(
    r"^(SelectWithUnionQuery|SelectIntersectExceptQuery|SelectQuery|DescribeQuery|Show\w*|Exists\w*|Explain)$")

_NODE = re.compile(r"^( *)(\w+)(?: (\S+))?")


class QueryRejected(ReadOnlyViolation):
    """A statement the query path refuses to run; the text says what to change."""


def check_ast(ast_lines: Iterable[str], table_functions: Iterable[str]) -> None:
    """Refuse a statement, given ClickHouse's ``EXPLAIN AST`` of it, if it reaches outside the store.

    >>> tf = {"file", "url", "numbers"}
    >>> check_ast(["SelectWithUnionQuery (children 1)", " ExpressionList (children 1)",
    ...            "  Function numbers (children 1)"], tf)
    >>> check_ast(["SelectWithUnionQuery (children 2)", " ExpressionList (children 1)",
    ...            "  Function File (children 1)"], tf)
    Traceback (most recent call last):
    ...
    pipelines.query_policy.QueryRejected: file() reads files outside the gpuwatch store; it is not allowed in queries
    >>> check_ast(["SelectWithUnionQuery (children 2)", " ExpressionList (children 1)", " Literal '/tmp/x'"], tf)
    Traceback (most recent call last):
    ...
    pipelines.query_policy.QueryRejected: INTO OUTFILE writes a file; queries may not (use --format csv and redirect)
    """
    reaching = {n.lower() for n in table_functions} - SAFE_TABLE_FUNCTIONS | REACHING_FUNCTIONS
    for i, line in enumerate(ast_lines):
        m = _NODE.match(line)
        if not m:
            continue
        depth, kind, name = len(m.group(1)), m.group(2), m.group(3) or ""
        if depth == 0:
            if not ALLOWED_STATEMENTS.match(kind):
                raise QueryRejected(f"{kind} is not a read-only statement")
        elif depth == 1 and kind == "Literal":
            # The only literal the parser hangs directly on a statement is INTO OUTFILE's path
            # (and its COMPRESSION); everything a query selects sits inside an ExpressionList.
            raise QueryRejected("INTO OUTFILE writes a file; queries may not (use --format csv and redirect)")
        if kind == "Set":
            raise QueryRejected("a SETTINGS clause may not change a query's limits; "
                                "ask whoever runs gpuwatch to change GPUWATCH_QUERY_*")
        if kind == "Function" and name.lower() in reaching:
            what = "reads files outside the gpuwatch store" if name.lower() == "file" else \
                "reaches outside the gpuwatch store (files, hosts, other databases or programs)"
            raise QueryRejected(f"{name.lower()}() {what}; it is not allowed in queries")
