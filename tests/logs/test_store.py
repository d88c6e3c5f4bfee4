"""The log path against real chDB: rows carry template ids, the templates table stays right under many
writers and replays, anomalies go through the incident book, and the explainer finds the culprits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

SCENARIO = Path(__file__).with_name("chdb_scenario.py")


@pytest.fixture(scope="module")
def found(tmp_path_factory) -> dict:
    data = tmp_path_factory.mktemp("logs-chdb")
    proc = subprocess.run([sys.executable, str(SCENARIO), str(data)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return orjson.loads(proc.stdout.strip().splitlines()[-1])


def test_the_logs_migration_applies(found):
    assert 2 in found["applied"]


def test_every_row_carries_a_template_id_that_the_templates_table_knows(found):
    assert found["rows_without_template"] == 0
    assert set(found["lines_per_template_in_logs"]) <= set(found["templates_table"])


def test_template_counts_are_exact_with_two_workers_writing_and_a_replay(found):
    assert found["rows_after_replay"] == found["rows_before_replay"]
    for tid, lines in found["lines_per_template_in_logs"].items():
        assert found["templates_table"][tid][1] == lines, found["templates_table"][tid][0]


def test_new_template_and_burst_alerts_fire_through_the_incident_book(found):
    firing = {(name, node) for name, status, node, _ in found["alerts"] if status == "firing"}
    assert firing == {("LogNewTemplate", "n1"), ("LogTemplateBurst", "n1")}


def test_an_alerts_evidence_finds_the_events_lines_under_every_id_it_had(found):
    generalised, evidence_rows, event_rows = found["evidence_first_id"]
    assert generalised, "the scenario's first template must have generalised"
    assert evidence_rows == event_rows > 1


def test_the_explainer_names_the_bursting_and_the_rare_template_with_examples(found):
    metrics = [m for m, _, _ in found["explain"]]
    assert metrics[0] == "log_template_burst" and "log_template_rare" in metrics
    burst = found["explain"][0]
    assert burst[1] >= 2000 and "NCCL INFO Channel" in burst[2] and "| e.g. NCCL INFO Channel " in burst[2]
    assert any("FATAL: parameter server" in detail for m, _, detail in found["explain"] if m == "log_template_rare")
    assert found["explain_query_rows"] >= 4
    assert "log_template_burst" in found["explain_job_metrics"]


def test_template_ids_are_stable_across_a_restart_and_for_a_seeded_new_worker(found):
    stored = set(found["templates_table"])
    assert set(found["restart_ids"]) <= stored
    assert found["restart_changes"] == ["none", "none", "none"]
    assert found["seeded"] >= 4
    assert found["fresh_ids"] == found["restart_ids"]


def test_stored_one_pass_ids_resolve_through_the_lineage_to_the_two_pass_grouping(found):
    """Templates generalise while lines are stored; the logs_resolved view groups them as two passes do."""
    assert found["stored_ids"] > len(found["two_pass_groups"]), "the scenario must make templates generalise"
    assert found["resolved_groups"] == found["two_pass_groups"]
    texts = [text for text, _, _ in found["resolved_templates"]]
    assert len(texts) == len(found["two_pass_groups"]) and sum(n for _, n, _ in found["resolved_templates"]) == 12
    assert any(earlier > 0 for _, _, earlier in found["resolved_templates"])


def test_header_fields_are_stored_in_columns(found):
    assert found["header_columns"][0][1] == "su(pam_unix)" and found["header_columns"][0][0].startswith("host")
    assert found["header_columns"][0][2].startswith("Jun")
