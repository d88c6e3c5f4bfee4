"""User SQL cannot touch the writer, reach outside the store, or hold up ingestion.

Real chDB and, where the pipeline runs, the real broker. Every statement that
reaches files, hosts or programs is tried through ``gpuwatch query`` (with and
without a pipeline) and ``POST /query``: each is refused with a message naming
what is not allowed, a listener on loopback sees no connection, a secret
file's content never shows, and no file is created or changed.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading

import httpx
import pytest

from tests.stack import ROOT, wait_for

TOKEN = "query-token-for-tests"


class ConnectionCounter:
    """A loopback TCP listener that counts every connection made to it, whatever the protocol."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener():
    c = ConnectionCounter()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def targets(tmp_path, listener):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a\n")
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    return {"secret": secret, "victim": victim, "new": tmp_path / "created.txt",
            "url": f"http://127.0.0.1:{listener.port}", "hostport": f"127.0.0.1:{listener.port}"}


#: (statement, what the refusal names)
REACHING = [
    ("SELECT file('{secret}')", "file()"),
    ("SELECT length(file('{secret}')) AS n", "file()"),
    ("SELECT arrayMap(p -> FILE(p), ['{secret}'])", "file()"),
    ("SELECT * FROM file('{secret}', 'LineAsString')", "file()"),
    ("DESCRIBE url('{url}/x', 'CSV')", "url()"),
    ("SELECT * FROM url('{url}/x', 'CSV', 'a String')", "url()"),
    ("SELECT * FROM s3('{url}/bucket/k.csv', 'CSV', 'a String')", "s3()"),
    ("SELECT * FROM remote('{hostport}', system.one)", "remote()"),
    ("SELECT * FROM mysql('{hostport}', 'db', 't', 'u', 'p')", "mysql()"),
    ("SELECT * FROM postgresql('{hostport}', 'db', 't', 'u', 'p')", "postgresql()"),
    ("SELECT * FROM executable('cat {secret}', 'TSV', 'a String')", "executable()"),
    ("SELECT * FROM input('a String')", "input()"),
    ("SELECT count() FROM (SELECT * FROM url('{url}/y', 'CSV', 'a String'))", "url()"),
    ("EXPLAIN SELECT file('{secret}')", "file()"),
    ("SELECT 'owned' INTO OUTFILE '{victim}' APPEND", "INTO OUTFILE"),
    ("SELECT 'owned' INTO OUTFILE '{victim}' TRUNCATE", "INTO OUTFILE"),
    ("SELECT 'owned' INTO OUTFILE '{new}'", "INTO OUTFILE"),
    ("SELECT 1 SETTINGS max_execution_time = 0", "max_execution_time"),  # the engine's readonly=1 refuses it
    ("WITH 1 AS x INSERT INTO gpuwatch.alerts (alertname) SELECT 'x'", "read-only"),
]


def gpuwatch(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=180)


def assert_nothing_reached(targets: dict, listener: ConnectionCounter, answer: str) -> None:
    assert "TOP-SECRET" not in answer
    assert listener.accepted == 0, "the query made a network connection"
    assert targets["victim"].read_text() == "untouched\n"
    assert not targets["new"].exists()


@pytest.fixture(scope="module")
def seeded_dsn(tmp_path_factory):
    dsn = f"chdb://{tmp_path_factory.mktemp('query-store') / 'clickhouse'}"
    seed = f"from pipelines.store import Store\nStore({dsn!r}).apply_schema()"
    subprocess.run([sys.executable, "-c", seed], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return dsn


@pytest.mark.parametrize("statement,named", REACHING, ids=[s for s, _ in REACHING])
def test_gpuwatch_query_refuses_what_reaches_outside_the_store(seeded_dsn, targets, listener, statement, named):
    r = gpuwatch("query", statement.format(**targets), env={"GPUWATCH_CLICKHOUSE_DSN": seeded_dsn})
    assert r.returncode == 2, r.stdout + r.stderr
    assert named in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert_nothing_reached(targets, listener, r.stdout + r.stderr)


def test_gpuwatch_query_still_reads_the_store_and_generates_data(seeded_dsn):
    env = {"GPUWATCH_CLICKHOUSE_DSN": seeded_dsn}
    r = gpuwatch("query", "SELECT count() AS n FROM gpuwatch.metrics_raw", "--format", "csv", env=env)
    assert r.returncode == 0 and r.stdout.splitlines() == ["n", "0"], r.stderr
    r = gpuwatch("query", "SELECT sum(number) AS s FROM numbers(10)", "--format", "csv", env=env)
    assert r.returncode == 0 and r.stdout.splitlines() == ["s", "45"], r.stderr


def test_a_query_too_big_for_its_limits_is_cut_off_and_says_which_limit(seeded_dsn):
    r = gpuwatch("query", "SELECT count() FROM numbers(1e13)", env={"GPUWATCH_CLICKHOUSE_DSN": seeded_dsn})
    assert r.returncode == 2 and "GPUWATCH_QUERY_MAX_ROWS_TO_READ" in r.stderr, r.stderr
    r = gpuwatch("query", "SELECT count() FROM numbers(1e13)", env={
        "GPUWATCH_CLICKHOUSE_DSN": seeded_dsn, "GPUWATCH_QUERY_MAX_ROWS_TO_READ": "0", "GPUWATCH_QUERY_TIMEOUT_S": "2"})
    assert r.returncode == 2 and "GPUWATCH_QUERY_TIMEOUT_S" in r.stderr, r.stderr


@pytest.mark.integration
def test_a_rejected_write_query_leaves_ingestion_running(stack):
    stack.start_pipeline()
    first = stack.simulate(1, 2, 5)["samples_published"]
    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") == first, 60, what=f"{first} rows")
    cli = gpuwatch("query", "WITH 1 AS x INSERT INTO gpuwatch.alerts (alertname) SELECT 'x'", env=stack.env())
    post = httpx.post(f"http://127.0.0.1:{stack.web_port}/query",
                      json={"sql": "WITH 1 AS x INSERT INTO gpuwatch.alerts (alertname) SELECT 'x'"}, timeout=60)
    second = stack.simulate(2, 2, 5)["samples_published"]
    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") == first + second, 60,
             what=f"all {first + second} samples stored after the rejected query")
    assert stack.scalar("SELECT count() FROM gpuwatch.alerts WHERE alertname = 'x'") == 0
    assert cli.returncode == 2 and re.search("read-?only", cli.stderr), cli.stderr
    assert post.status_code == 403, post.text


@pytest.mark.integration
def test_the_pipeline_refuses_what_reaches_outside_the_store_and_wants_its_token(stack, targets, listener):
    stack.start_pipeline(GPUWATCH_QUERY_TOKEN=TOKEN)
    url = f"http://127.0.0.1:{stack.web_port}/query"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(url, json={"sql": "SELECT 1"}, timeout=30).status_code == 401
    assert httpx.post(url, json={"sql": "SELECT 1"}, headers={"Authorization": "Bearer wrong"},
                      timeout=30).status_code == 401
    r = gpuwatch("query", "SELECT 1", env=stack.env())
    assert r.returncode == 2 and "GPUWATCH_QUERY_TOKEN" in r.stderr, r.stderr
    for statement, named in REACHING:
        sql = statement.format(**targets)
        r = httpx.post(url, json={"sql": sql}, headers=auth, timeout=60)
        assert r.status_code == 403 and named in r.json()["error"], (sql, r.text)
        assert_nothing_reached(targets, listener, r.text)
        c = gpuwatch("query", sql, env=stack.env(GPUWATCH_QUERY_TOKEN=TOKEN))
        assert c.returncode == 2 and named in c.stderr, (sql, c.stderr)
        assert_nothing_reached(targets, listener, c.stdout + c.stderr)
    r = httpx.post(url, json={"sql": "SELECT count() AS n FROM gpuwatch.metrics_raw"}, headers=auth, timeout=30)
    assert r.status_code == 200 and r.json()["rows"] == [[0]]


@pytest.mark.integration
def test_a_runaway_query_is_cut_off_while_ingestion_continues(stack):
    stack.start_pipeline(GPUWATCH_QUERY_MAX_ROWS_TO_READ="0", GPUWATCH_QUERY_TIMEOUT_S="45")
    first = stack.simulate(1, 2, 5)["samples_published"]
    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") == first, 60, what=f"{first} rows")
    answer: dict = {}

    def runaway() -> None:
        answer["r"] = httpx.post(f"http://127.0.0.1:{stack.web_port}/query",
                                 json={"sql": "SELECT count() FROM numbers(1e13)"}, timeout=300)

    t = threading.Thread(target=runaway, daemon=True)
    t.start()
    wait_for(lambda: stack.scalar("SELECT count() FROM system.processes WHERE query LIKE '%numbers(1e13)%' "
                                  "AND query NOT LIKE '%system.processes%'"), 30, what="the runaway query to start")
    second = stack.simulate(2, 2, 5)["samples_published"]
    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") == first + second, 60,
             what="samples stored while the runaway query runs")
    assert t.is_alive(), "the runaway query ended before ingestion was shown to continue"
    t.join(200)
    assert answer["r"].status_code == 400 and "GPUWATCH_QUERY_TIMEOUT_S" in answer["r"].json()["error"]


def test_a_result_larger_than_its_byte_limit_is_refused(tmp_path):
    """No byte limit: a few hundred MB of result became a few GB in the worker (as rows, then as JSON)."""
    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    check = f"""
import pytest
from pipelines.query_sandbox import QueryLimits, QuerySandbox
from pipelines.store import Store, StoreError
store = Store({dsn!r}); store.apply_schema(); store.close()
sandbox = QuerySandbox({dsn!r}, "gpuwatch", QueryLimits(max_result_bytes=1_000_000))
with pytest.raises(StoreError, match="GPUWATCH_QUERY_MAX_RESULT_BYTES"):
    sandbox.run("SELECT materialize(repeat('x', 100000)) FROM numbers(100)")
assert len(sandbox.run("SELECT number FROM numbers(1000)").rows) == 1000
"""  # in a process of its own: chDB opens one path per process
    r = subprocess.run([sys.executable, "-c", check], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
