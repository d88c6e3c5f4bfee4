"""The log path against real chDB, run in its own process (chDB allows one data path per process).

Usage: python tests/logs/chdb_scenario.py DATA_DIR  -> prints one JSON object of findings.
tests/logs/test_store.py runs it once and asserts on what it prints.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipelines.decide import IncidentBook  # noqa: E402
from pipelines.logs.anomalies import LogAnomalySettings  # noqa: E402
from pipelines.logs.explain import LogExplainer, fleet_templates  # noqa: E402
from pipelines.logs.processor import (LINEAGE_COLUMNS, LINEAGE_TABLE, LOG_COLUMNS, TEMPLATE_COLUMNS,  # noqa: E402
                                     TEMPLATE_TABLE, LogProcessor)
from pipelines.sinks.tables import LOGS, TableSpec  # noqa: E402
from pipelines.store import Store  # noqa: E402
from schemas.logs import LogBatch  # noqa: E402

TEMPLATES = TableSpec(TEMPLATE_TABLE, TEMPLATE_COLUMNS, millis=("first_seen", "last_seen"))
LINEAGE = TableSpec(LINEAGE_TABLE, LINEAGE_COLUMNS, millis=("changed_at",))
SETTINGS = LogAnomalySettings(warmup_s=600, warmup_lines=500, history_windows=5)
ROUTINE = ["step {i} loss 2.{i} lr 3e-4", "NCCL INFO Channel 0{j}/0 : 0[0] -> 1[1] via P2P/IPC/read",
           "worker {w} ready on 10.0.0.{j}"]
FATAL = "FATAL: parameter server lost contact with rank 12"


def lines_at(i: int) -> list[str]:
    return [t.format(i=i, j=i % 8, w=("alpha", "beta", "gamma")[i % 3]) for t in ROUTINE] * 10


def main(data: Path) -> dict:
    store = Store(f"chdb://{data / 'clickhouse'}")
    found: dict = {"applied": store.apply_schema()}
    to_tpl, to_lineage = TEMPLATES.converter(), LINEAGE.converter()
    book, alerts = IncidentBook(), []
    offset = [0]

    def write(p: LogProcessor, node: str, lines: list[str], ts: float, partition: int = 0, **kw):
        out = p.process(LogBatch(node=node, records=[
            {"ts": ts + i * 0.001, "message": m, "labels": {"job": "llm"}, **kw} for i, m in enumerate(lines)]),
            partition, offset[0])
        token = f"logs:{partition}:{offset[0]}"
        log_rows = LOGS.new_rows()  # as the sink buffers them: columns
        log_rows.extend(out.log_rows)
        store.insert("logs", log_rows, LOG_COLUMNS, dedup_token=token)
        store.insert(TEMPLATE_TABLE, [to_tpl(r) for r in out.template_rows], TEMPLATE_COLUMNS, dedup_token=token)
        if out.lineage_rows:
            store.insert(LINEAGE_TABLE, [to_lineage(r) for r in out.lineage_rows], LINEAGE_COLUMNS, dedup_token=token)
        offset[0] += 1
        for obs in out.observations:
            alerts.extend(book.observe(obs.key, obs.ts, obs.conditions, channel="logs"))
        return out

    t0 = float(int(time.time() - 7200) // 60 * 60)
    first = LogProcessor(data / "state", worker="w1", anomaly_settings=SETTINGS)
    second = LogProcessor(data / "state", worker="w2", anomaly_settings=SETTINGS)  # another worker, other nodes
    for m in range(15):
        for s in range(0, 60, 15):
            write(first, "n1", lines_at(m * 4 + s), t0 + m * 60 + s)
            write(second, "n2", lines_at(m * 4 + s), t0 + m * 60 + s, partition=1)
    onset = t0 + 15 * 60
    write(first, "n1", [FATAL], onset - 20)
    burst = write(first, "n1", ["NCCL INFO Channel 03/0 : 0[0] -> 1[1] via P2P/IPC/read"] * 2000, onset - 10)

    # a replayed batch (same partition and offset) must not count twice
    before = store.query("SELECT count() FROM gpuwatch.logs").rows[0][0]
    replay = [to_tpl(r) for r in burst.template_rows]
    store.insert(TEMPLATE_TABLE, replay, TEMPLATE_COLUMNS, dedup_token=f"logs:0:{offset[0] - 1}")
    replayed = LOGS.new_rows()
    replayed.extend(burst.log_rows)
    store.insert("logs", replayed, LOG_COLUMNS, dedup_token=f"logs:0:{offset[0] - 1}")
    found["rows_before_replay"] = before
    found["rows_after_replay"] = store.query("SELECT count() FROM gpuwatch.logs").rows[0][0]

    found["lines_per_template_in_logs"] = {str(t): n for t, n in store.query(
        "SELECT template_id, count() FROM gpuwatch.logs GROUP BY template_id").rows}
    found["templates_table"] = {str(t): [text, n] for t, text, n in store.query(
        "SELECT template_id, text, count FROM gpuwatch.log_templates_current").rows}
    found["rows_without_template"] = store.query(
        "SELECT count() FROM gpuwatch.logs WHERE template_id = 0").rows[0][0]
    found["alerts"] = [[a.alertname, a.status, a.labels.get("node", ""), a.evidence_query] for a in alerts]
    for a in alerts:  # every evidence query must run
        store.query(a.evidence_query)

    evidence, query = LogExplainer(store).explain(node="n1", ts=onset)
    found["explain"] = [[e.metric, e.value, e.detail] for e in evidence]
    found["explain_query_rows"] = len(store.query(query).rows)
    job_evidence, _ = LogExplainer(store).explain(job="llm", ts=onset)
    found["explain_job_metrics"] = [e.metric for e in job_evidence]

    # stored one-pass ids, resolved through the stored lineage, group lines as the two-pass CLI does
    syslog = [f"Jun {d:2d} 0{d % 10}:16:0{d % 10} host{d} su(pam_unix)[{d}]: session {v} for user {u} by {w}"
              for d, (v, u, w) in enumerate([(v, u, w) for v in ("opened", "closed") for u in ("cyrus", "news", "root")
                                              for w in ("cron", "login")], 1)]
    gen = LogProcessor(None, worker="w3")
    for i in range(0, len(syslog), 3):
        write(gen, "n3", syslog[i:i + 3], t0 + 60 + i, partition=2, source="/var/log/messages")
    two_pass = LogProcessor(None, worker="w4")
    for line in syslog:
        two_pass.mine_line(line)
    found["two_pass_groups"] = sorted(sorted(m for m in syslog if two_pass.mine_line(m).template_id == t)
                                      for t in {two_pass.mine_line(m).template_id for m in syslog})
    rows = store.query("SELECT message, template_id, event_id, host, component, logged_at FROM gpuwatch.logs_resolved "
                       "WHERE node = 'n3'").rows
    found["stored_ids"] = len({r[1] for r in rows})
    found["resolved_groups"] = sorted(sorted(r[0] for r in rows if r[2] == e) for e in {r[2] for r in rows})
    found["header_columns"] = sorted({(r[3], r[4], r[5][:6]) for r in rows})[:2]
    # an alert's evidence query, made with the id the event's first line was stored under, finds every line
    # of the event, those stored under later ids included
    first_row = store.query("SELECT template_id, event_id FROM gpuwatch.logs_resolved WHERE node = 'n3' "
                            "ORDER BY ts LIMIT 1").rows[0]
    found["evidence_first_id"] = [first_row[0] != first_row[1], len(store.query(
        gen.anomalies._lines_query("n3", first_row[0], t0)).rows), len(store.query(
            f"SELECT 1 FROM gpuwatch.logs_resolved WHERE node = 'n3' AND event_id = {first_row[1]}").rows)]
    found["resolved_templates"] = store.query(
        "SELECT text, count, length(earlier_ids) FROM gpuwatch.log_templates_resolved "
        "WHERE text LIKE 'session%' ORDER BY text").rows

    # restart: a new processor on the same state file gives the ids already stored
    first.close()
    second.close()
    restarted = LogProcessor(data / "state", worker="w1", anomaly_settings=SETTINGS)
    found["restart_ids"] = [str(restarted.mine_line(m).template_id) for m in lines_at(1)[:3] + [FATAL]]
    found["restart_changes"] = [restarted.mine_line(m).change for m in lines_at(2)[:3]]
    # a fresh worker seeded from the fleet's templates table lands on the same ids
    fresh = LogProcessor(None, worker="w9")
    found["seeded"] = fresh.learn_fleet_templates(fleet_templates(store))
    found["fresh_ids"] = [str(fresh.mine_line(m).template_id) for m in lines_at(1)[:3] + [FATAL]]
    store.close()
    return found


if __name__ == "__main__":
    print(orjson.dumps(main(Path(sys.argv[1]))).decode())
