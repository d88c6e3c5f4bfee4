"""Threshold rules: Prometheus-style `for`, `keep_firing_for`, counters, and helpful errors."""

from __future__ import annotations

import pytest

from pipelines.decide import IncidentBook
from pipelines.transforms.rules import RuleError, RuleSet

RULES = """
groups:
  - name: test
    rules:
      - alert: Hot
        metric: gpu_temp_c
        op: ">"
        threshold: 85
        for: 10s
        keep_firing_for: 5s
        severity: critical
        labels: {team: infra}
        annotations: {summary: "GPU {gpu} on {node} at {value:.0f}"}
      - alert: DbeErrors
        metric: ecc_dbe_volatile_total
        function: increase
        window: 60s
        op: ">"
        threshold: 0
"""


def temps(rules: RuleSet, book: IncidentBook, series: list[float], start: float = 0.0):
    events = []
    for i, v in enumerate(series):
        ts = start + i
        conds = rules.evaluate("n1", [(ts, 2, "GPU-2", "gpu_temp_c", v, {"job": "j"})])
        events += [(ts, e.status) for e in book.observe("n1", ts, conds)]
    return events


def test_for_delays_firing_and_keep_firing_for_delays_resolution():
    rules, book = RuleSet.from_yaml(RULES), IncidentBook()
    events = temps(rules, book, [80] * 5 + [90] * 15 + [80] * 10)
    assert events == [(15.0, "firing"), (25.0, "resolved")]  # Prometheus: resolved once 5s passed


def test_a_blip_shorter_than_for_never_fires():
    assert temps(RuleSet.from_yaml(RULES), IncidentBook(), [80, 90, 90, 90, 80, 80] * 5) == []


def test_condition_carries_labels_annotations_and_evidence():
    [c] = RuleSet.from_yaml(RULES).evaluate("n1", [(5.0, 2, "GPU-2", "gpu_temp_c", 91.0, {"job": "j"})])
    assert c.identity == {"alertname": "Hot", "node": "n1", "gpu": "2", "uuid": "GPU-2", "severity": "critical",
                          "team": "infra"}
    assert c.annotations["summary"] == "GPU 2 on n1 at 91" and c.annotations["job"] == "j"
    assert c.evidence[0].value == 91.0 and c.evidence[0].baseline == 85
    assert "metric = 'gpu_temp_c'" in c.evidence_query and "gpu = 2" in c.evidence_query


def test_increase_rules_watch_counters_and_survive_resets():
    rules = RuleSet.from_yaml(RULES)
    seen = []
    for ts, v in [(0, 5.0), (10, 5.0), (20, 5.0), (30, 6.0), (100, 6.0), (110, 0.0), (120, 2.0)]:
        seen.append(bool(rules.evaluate("n1", [(float(ts), 0, "", "ecc_dbe_volatile_total", v, {})])))
    assert seen == [False, False, False, True, False, False, True]


@pytest.mark.parametrize("text, message", [
    ("groups: [{name: g, rules: [{alert: X, metric: m, op: '>>', threshold: 1}]}]", "rule 'X': op"),
    ("groups: [{name: g, rules: [{alert: X, metric: m, op: '>', threshold: 1, for: soon}]}]", "30s, 5m"),
    ("groups: [{name: g, rules: [{alert: X, metric: m, op: '>', threshold: 1, colour: red}]}]", "colour"),
    ("groups: [ {", "not valid YAML"),
    # a layout typo loaded no rules at all, quietly: threshold alerting off (a new user's run)
    ("group: [{name: g, rules: [{alert: X, metric: m, op: '>', threshold: 1}]}]", "'groups:' list"),
    ("", "'groups:' list"),
    ("hello", "'groups:' list"),
    ("groups: [{name: g, rules: []}]\nfoo: 1", "unknown top-level key"),
    ("groups: {name: g}", "must be a list"),
    ("groups: [{name: g, rule: [{alert: X, metric: m, op: '>', threshold: 1}]}]", "'rules:' list"),
    ("groups: [{name: g, rules: [], interval: 5s}]", "unknown key"),
    ("groups: [hello]", "'rules:' list"),
    # delivered unrendered to people before
    ("groups: [{name: g, rules: [{alert: X, metric: m, op: '>', threshold: 1, annotations: {s: '{nosuch}'}}]}]",
     r"rule 'X': annotations: annotation 's': unknown field \{nosuch\}"),
    ("groups: [{name: g, rules: [{alert: X, metric: m, op: '>', threshold: 1, annotations: {s: '{value:.1q}'}}]}]",
     "Unknown format code 'q'"),
])
def test_bad_rule_files_say_what_is_wrong(text, message):
    with pytest.raises(RuleError, match=message):
        RuleSet.from_yaml(text, "rules.yaml")


def test_the_built_in_rules_load():
    names = {r.alert for r in RuleSet.from_file().rules}
    assert {"GpuTemperatureHigh", "GpuEccDoubleBitErrors"} <= names


def test_rule_files_that_are_not_yaml_text_say_so(tmp_path):
    with pytest.raises(RuleError, match="is not a file"):
        RuleSet.from_file(tmp_path)
    garbage = tmp_path / "rules.yaml"
    garbage.write_bytes(b"\xff\xfe\x00groups")
    with pytest.raises(RuleError, match="not UTF-8"):
        RuleSet.from_file(garbage)


def test_an_explicitly_empty_rule_set_is_allowed():
    assert RuleSet.from_yaml("groups: []").rules == []
