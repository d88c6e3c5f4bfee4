"""Per-source settings: a source's own line format and clustering parameters, from config or the agent."""

from __future__ import annotations

import pytest

from pipelines.logs.processor import LOG_COLUMNS, LogProcessor
from pipelines.logs.sources import LogSources, LogSourcesError
from schemas.logs import LogBatch

LEVEL, MESSAGE, TEMPLATE, COMPONENT = (LOG_COLUMNS.index(c) for c in ("level", "message", "template_id", "component"))


def rows(p: LogProcessor, lines: list[str], source: str, t0: float, labels: dict | None = None) -> list[tuple]:
    b = LogBatch(node="n1", records=[{"ts": t0 + i, "message": m, "source": source, "labels": labels or {}}
                                     for i, m in enumerate(lines)])
    return p.process(b).log_rows


def test_a_configured_format_splits_a_house_format(t0):
    sources = LogSources.from_dict({"sources": [
        {"match": "/opt/app/*.log", "format": r"(?P<ts>\d+)\|(?P<level>\w+)\|(?P<component>[\w.]+)\|(?P<msg>.*)"}]})
    p = LogProcessor(sources=sources)
    out = rows(p, ["1700000000|WARN|db.pool|pool exhausted after 30 s", "1700000060|WARN|db.pool|pool exhausted after 9 s"],
               "/opt/app/server.log", t0)
    assert [r[LEVEL] for r in out] == ["warning", "warning"]
    assert out[0][COMPONENT] == "db.pool" and out[0][TEMPLATE] == out[1][TEMPLATE]
    assert p.mine_line("pool exhausted after 5 s").template_id == out[0][TEMPLATE]


def test_the_agent_can_name_a_files_format_in_a_label(t0):
    p = LogProcessor(sources=LogSources())
    fmt = r"(?P<host>\S+) @ (?P<msg>.*)"
    out = rows(p, ["node-1 @ fan 3 failed", "node-2 @ fan 4 failed"], "/var/log/bmc.log", t0, {"log_format": fmt})
    assert out[0][TEMPLATE] == out[1][TEMPLATE] and out[0][LOG_COLUMNS.index("host")] == "node-1"


def test_a_bad_format_label_keeps_the_lines(t0):
    p = LogProcessor(sources=LogSources())
    out = rows(p, ["fan 3 failed"], "/var/log/x.log", t0, {"log_format": "(?P<ts>unclosed"})
    assert len(out) == 1 and p.counters["errors"] == 0


def test_a_source_with_its_own_similarity_gets_its_own_miner(t0):
    sources = LogSources.from_dict({"sources": [{"match": "/var/log/strict.log", "similarity": 1.0}]})
    p = LogProcessor(sources=sources)
    lines = ["session opened for user alpha now", "session opened for user beta now"]
    strict = rows(p, lines, "/var/log/strict.log", t0)
    loose = rows(p, lines, "/var/log/loose.log", t0)
    assert strict[0][TEMPLATE] != strict[1][TEMPLATE]
    assert len(loose) == 2
    assert p.mine_line(lines[0], "/var/log/loose.log").template_id == p.mine_line(lines[1], "/var/log/loose.log").template_id


def test_a_bad_sources_file_says_which_entry_and_why(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  - match: '*.log'\n    similarity: 2\n")
    with pytest.raises(LogSourcesError, match=r"#1: similarity"):
        LogSources.load(path)
    path.write_text("sources:\n  - match: '*.log'\n    format: '(?P<ts>\\S+) x'\n")
    with pytest.raises(LogSourcesError, match="msg"):
        LogSources.load(path)


def test_the_agent_sends_a_files_format_as_a_label(tmp_path):
    from agents.collectors.logfiles import LogFilesCollector, LogFilesConfig

    log = tmp_path / "bmc.log"
    log.write_text("")
    collector = LogFilesCollector(LogFilesConfig(enabled=True, paths=[str(log)], format=r"(?P<host>\S+) @ (?P<msg>.*)",
                                                 multiline_timeout_s=0))
    collector.start()
    log.write_text("node-1 @ fan 3 failed\n")
    records = collector.logs(0.0)
    assert records and records[0]["labels"]["log_format"] == r"(?P<host>\S+) @ (?P<msg>.*)"
    with pytest.raises(ValueError, match="msg"):
        LogFilesConfig(paths=[str(log)], format=r"(?P<host>\S+) .*")
