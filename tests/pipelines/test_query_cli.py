"""``gpuwatch query`` answers whether or not a pipeline owns the embedded store, and only reads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import orjson
import pytest

from tests.stack import ROOT


def gpuwatch(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=120)


def test_query_opens_the_store_itself_when_no_pipeline_runs(tmp_path):
    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    seed = textwrap.dedent(f"""
        import time
        from pipelines.store import Store
        s = Store({dsn!r}); s.apply_schema()
        s.insert("node_events", [[int(time.time() * 1000), "node-7", 3, "xid", 79, "critical", "reboot",
                                  "GPU has fallen off the bus", "", "0000:3b:00.0", {{}}]],
                 ["ts", "node", "gpu", "source", "code", "severity", "action", "title", "message", "pci_bus_id",
                  "labels"])
    """)
    subprocess.run([sys.executable, "-c", seed], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    env = {"GPUWATCH_CLICKHOUSE_DSN": dsn}
    r = gpuwatch("query", "SELECT node, gpu, code FROM gpuwatch.node_events", "--format", "json", env=env)
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout) == [{"node": "node-7", "gpu": 3, "code": 79}]
    r = gpuwatch("query", "SELECT node, code FROM gpuwatch.node_events", "--format", "csv", env=env)
    assert r.stdout.splitlines() == ["node,code", "node-7,79"]
    r = gpuwatch("query", "DROP TABLE gpuwatch.node_events", env=env)
    assert r.returncode == 2 and "only read-only statements" in r.stderr
    r = gpuwatch("query", "SELECT nope FROM gpuwatch.node_events", env=env)
    assert r.returncode == 2 and "nope" in r.stderr


@pytest.mark.integration
def test_query_goes_through_the_running_pipeline_that_owns_the_store(stack):
    stack.start_pipeline()
    n = stack.simulate(1, 2, 5)["samples_published"]
    from tests.stack import wait_for

    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") == n, 60, what=f"{n} rows")
    r = gpuwatch("query", "SELECT count() AS n FROM gpuwatch.metrics_raw", "--format", "json", env=stack.env())
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout) == [{"n": n}]
    r = gpuwatch("query", "INSERT INTO gpuwatch.heartbeats VALUES (now(), 'x', 'v', 0, {})", env=stack.env())
    assert r.returncode == 2 and "read-only" in r.stderr


def test_integers_wider_than_64_bits_come_back_as_text_not_a_crash(tmp_path):
    """ClickHouse has Int128/UInt256; orjson stops at 64 bits. Both the CLI and /query serialise through
    rows_json, which must answer (the value as exact text) rather than raise."""
    from pipelines.store import rows_json

    body = orjson.loads(rows_json({"columns": ["a", "b"], "rows": [[-5 * 10**21, 2**64], [1, 2.5]]}))
    assert body == {"columns": ["a", "b"], "rows": [["-5000000000000000000000", "18446744073709551616"], [1, 2.5]]}
    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    subprocess.run([sys.executable, "-c", f"from pipelines.store import Store; Store({dsn!r}).apply_schema()"],
                   cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    env = {"GPUWATCH_CLICKHOUSE_DSN": dsn}
    r = gpuwatch("query", "SELECT toInt128('-5000000000000000000000') AS a, toUInt64(7) AS b", "--format", "json",
                 env=env)
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout) == [{"a": "-5000000000000000000000", "b": 7}]


def test_a_format_clause_and_a_misspelt_statement_get_errors_that_say_what_to_do():
    """"SELECT ... FORMAT TSV" answered with a syntax error about "FORMAT Native" (the clause the driver
    appends), and "SELEC 1" only listed the allowed statements without saying which word was refused."""
    from pipelines.store import ReadOnlyViolation, StoreError, check_read_only

    with pytest.raises(StoreError, match=r"leave out FORMAT TSV: .*--format json, csv or table"):
        check_read_only("SELECT * FROM gpuwatch.alerts FORMAT TSV;")
    with pytest.raises(ReadOnlyViolation, match=r"only read-only statements .* are allowed, not SELEC"):
        check_read_only("SELEC 1")
    assert check_read_only("SELECT 'FORMAT TSV' AS s") == "SELECT 'FORMAT TSV' AS s"
    assert check_read_only("SELECT format('{}', 1)") == "SELECT format('{}', 1)"
    for fine in ("SELECT 1\n-- FORMAT TSV", "SELECT 1 -- see FORMAT JSON", "SELECT 1 /* FORMAT CSV */",
                 "SELECT format f FROM t", "SELECT x FROM format f", "SELECT a FROM t ORDER BY format DESC",
                 "SELECT a FROM t ORDER BY format", "SELECT a, format b FROM t"):
        assert check_read_only(fine) == fine


def test_limit_0_is_an_empty_answer_not_the_drivers_probe_error(tmp_path):
    """The driver took a trailing LIMIT 0 for its own metadata probe: "LIMIT 0 metadata probe unexpectedly
    returned rows. Use raw_query()" for `gpuwatch query` and for the pipeline's own reads."""
    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    check = textwrap.dedent(f"""
        from pipelines.store import Store
        s = Store({dsn!r}); s.apply_schema()
        assert s.query("SELECT * FROM gpuwatch.alerts LIMIT 0").rows == []
    """)  # in a process of its own: chDB opens one path per process
    subprocess.run([sys.executable, "-c", check], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    env = {"GPUWATCH_CLICKHOUSE_DSN": dsn}
    r = gpuwatch("query", "SELECT 1 AS x LIMIT 0 -- none", "--format", "json", env=env)
    assert r.returncode == 0 and orjson.loads(r.stdout) == [], r.stdout + r.stderr


def test_an_owner_file_whose_pid_now_names_another_process_is_stale(tmp_path):
    """A stale owner file naming a reused pid (pid 1 after a reboot) blocked every `gpuwatch query`."""
    from pipelines.store import ChdbOwner

    owner = ChdbOwner(tmp_path)
    owner.claim("http://127.0.0.1:9")
    assert owner.current()["pid"] == os.getpid()
    record = orjson.loads(owner.file.read_bytes())
    owner.file.write_bytes(orjson.dumps({**record, "pid": 1}))  # alive, but not the process that wrote it
    assert owner.current() is None


def test_query_does_not_make_a_store_in_a_directory_that_holds_none(tmp_path):
    plain = tmp_path / "documents"
    plain.mkdir()
    (plain / "thesis.txt").write_text("years of work")
    r = gpuwatch("query", "SELECT 1", env={"GPUWATCH_CLICKHOUSE_DSN": f"chdb://{plain}"})
    assert r.returncode != 0 and "not a ClickHouse data directory" in r.stderr, r.stderr
    assert [p.name for p in plain.iterdir()] == ["thesis.txt"]  # chDB wrote its directories in beside it


@pytest.mark.integration
def test_a_flood_of_slow_queries_is_refused_and_ingest_goes_on(stack):
    """Slow queries parked on the loop's default executor, which the sink's inserts share: all writes stopped
    while /healthz said ok. Queries now have threads of their own and a bounded backlog."""
    import asyncio

    import httpx

    stack.start_pipeline()
    url = f"http://127.0.0.1:{stack.web_port}/query"

    async def flood():
        async with httpx.AsyncClient(timeout=120) as client:
            sql = {"sql": "SELECT sleep(2)"}
            return await asyncio.gather(*(client.post(url, json=sql) for _ in range(12)))

    def stored() -> int:  # through /query too, so a 429 while the flood lasts is "not yet"
        r = httpx.post(url, json={"sql": "SELECT count() FROM gpuwatch.metrics_raw"}, timeout=60)
        return r.json()["rows"][0][0] if r.status_code == 200 else -1

    async def ingest_meanwhile():
        n = await asyncio.to_thread(lambda: stack.simulate(1, 2, 5)["samples_published"])
        from tests.stack import wait_for

        await asyncio.to_thread(wait_for, lambda: stored() == n, 120, what=f"{n} rows")

    async def both():
        answers, _ = await asyncio.gather(flood(), ingest_meanwhile())
        return answers

    codes = sorted(r.status_code for r in asyncio.run(both()))
    assert codes.count(429) >= 1 and set(codes) <= {200, 429}, codes
