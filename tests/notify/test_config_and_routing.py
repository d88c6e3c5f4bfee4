"""The YAML config, matchers and the routing tree (no broker, no network)."""

from __future__ import annotations

import pytest

from pipelines.notify.config import ConfigError, load_config, parse_config
from pipelines.notify.matchers import Matcher, MatcherError, parse_matchers
from pipelines.notify.routing import build_routes

TREE = """
global:
  external_url: https://gw.example
  group_wait: 10s
route:
  receiver: default
  group_by: [alertname]
  group_interval: 2m
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
      group_wait: 1s
    - matchers: ['team!="ml"', 'node=~"gpu-0[0-9]"']
      receiver: infra
      group_by: [node]
      routes:
        - match: {alertname: GpuXid}
          receiver: xid
    - match_re: {alertname: "Gpu.*"}
      receiver: gpu
receivers:
  - name: default
    log_configs: [{}]
  - name: pager
    webhook_configs: [{url: "http://127.0.0.1:1/pd", hmac_secret: "${HOOK_KEY}"}]
  - {name: infra}
  - {name: xid}
  - {name: gpu}
"""


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_KEY", "k-123456")
    p = tmp_path / "notify.yaml"
    p.write_text(TREE)
    return build_routes(load_config(p))


@pytest.mark.parametrize("labels, receivers", [
    ({"alertname": "GpuHot", "severity": "critical", "node": "gpu-01"}, ["pager", "infra"]),
    ({"alertname": "GpuXid", "severity": "warning", "node": "gpu-02"}, ["xid"]),
    ({"alertname": "GpuHot", "severity": "warning", "node": "gpu-02", "team": "ml"}, ["gpu"]),
    ({"alertname": "GpuHot", "node": "gpu-10"}, ["gpu"]),
    ({"alertname": "DiskFull", "node": "cpu-1"}, ["default"]),
    # as in Alertmanager: a matching child with continue still counts, so the parent does not
    ({"alertname": "DiskFull", "severity": "critical"}, ["pager"]),
])
def test_routing_tree_matches_like_alertmanager(tree, labels, receivers):
    assert [r.receiver for r in tree.match(labels)] == receivers


def test_children_inherit_grouping_and_timings(tree):
    pager, infra = tree.match({"alertname": "A", "severity": "critical", "node": "gpu-01"})
    assert (pager.group_by, pager.group_wait, pager.group_interval) == (("alertname",), 1.0, 120.0)
    assert (infra.group_by, infra.group_wait, infra.repeat_interval) == (("node",), 10.0, 4 * 3600.0)
    (xid,) = tree.match({"alertname": "GpuXid", "node": "gpu-01"})
    assert xid.group_by == ("node",) and xid.group_key({"alertname": "GpuXid", "node": "gpu-01"}).endswith(
        ':{node="gpu-01"}')
    assert pager.group_key({"alertname": "A"}) != infra.group_key({"alertname": "A"})


def test_env_secret_is_expanded_and_never_printed(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_KEY", "k-123456")
    p = tmp_path / "n.yaml"
    p.write_text(TREE)
    cfg = load_config(p)
    kind, hook = cfg.receivers[1].integrations[0]
    assert kind == "webhook" and hook.hmac_secret.get_secret_value() == "k-123456"
    assert "k-123456" not in repr(cfg) and "k-123456" not in cfg.describe()


@pytest.mark.parametrize("doc, message", [
    ({"route": {"receiver": "nope"}, "receivers": [{"name": "a"}]}, "receiver 'nope' is not defined"),
    ({"route": {}, "receivers": [{"name": "a"}]}, "top-level route needs a receiver"),
    ({"route": {"receiver": "a"}, "receivers": [{"name": "a", "sms_configs": [{}]}]}, "unknown key 'sms_configs'"),
    ({"route": {"receiver": "a", "group_wait": "soon"}, "receivers": [{"name": "a"}]}, "write it like 30s"),
    ({"route": {"receiver": "a", "routes": [{"matchers": ["node=~(("]}]}, "receivers": [{"name": "a"}]},
     "bad regular expression"),
    ({"route": {"receiver": "a"}, "receivers": [{"name": "a"}, {"name": "a"}]}, "must be unique"),
    ({"route": {"receiver": "a"}, "receivers": [{"name": "a", "webhook_configs": [{"url": "ftp://secret-tok"}]}]},
     "receivers[0] (a).webhook_configs[0].url: webhook url must start with http"),
    ({"route": {"receiver": "a", "grup_by": ["x"]}, "receivers": [{"name": "a"}]}, "grup_by: Extra inputs"),
])
def test_config_errors_say_where_and_what(doc, message):
    with pytest.raises(ConfigError) as e:
        parse_config(doc)
    assert message in str(e.value)
    assert "secret-tok" not in str(e.value)


def test_missing_env_var_is_named():
    with pytest.raises(ConfigError, match="NOPE_NOT_SET is not set"):
        parse_config({"route": {"receiver": "a"},
                      "receivers": [{"name": "a", "webhook_configs": [{"url": "${NOPE_NOT_SET}"}]}]})


@pytest.mark.parametrize("text, labels, hit", [
    ('a="x"', {"a": "x"}, True),
    ('a="x"', {"a": "xy"}, False),
    ('a!="x"', {}, True),
    ('a=~"x|y"', {"a": "y"}, True),
    ('a=~"x"', {"a": "xx"}, False),          # anchored
    ('a!~"x.*"', {"a": "yx"}, True),
    ('a="say \\"hi\\""', {"a": 'say "hi"'}, True),
])
def test_matchers(text, labels, hit):
    assert Matcher.parse(text).matches(labels) is hit


def test_matcher_lists_and_errors():
    ms = parse_matchers('{alertname="A", node=~"n1,n2"}')
    assert [str(m) for m in ms] == ['alertname="A"', 'node=~"n1,n2"']
    assert Matcher.from_dict(ms[1].as_dict()) == ms[1]
    with pytest.raises(MatcherError, match="cannot parse"):
        Matcher.parse("just words")
    # `silence create 'node="x'` silenced the value `"x`, which no alert carries
    for text in ('node="x', 'node=x"', 'node="x\\"', 'node="'):
        with pytest.raises(MatcherError, match="unclosed quote|quote"):
            Matcher.parse(text)
    assert Matcher.parse("node=x").value == "x"  # unquoted values stay allowed, as in Alertmanager


def test_the_example_config_is_valid(monkeypatch):
    from pathlib import Path

    import pipelines.notify

    for var, value in {"GPUWATCH_ONCALL_WEBHOOK": "https://hooks.example/x", "GPUWATCH_ONCALL_WEBHOOK_KEY": "k",
                       "GPUWATCH_SLACK_WEBHOOK": "https://hooks.slack.com/services/T/B/X",
                       "GPUWATCH_PAGERDUTY_KEY": "p" * 32, "GPUWATCH_SMTP_PASSWORD": "pw"}.items():
        monkeypatch.setenv(var, value)
    cfg = load_config(Path(pipelines.notify.__file__).with_name("notify.example.yaml"))
    kinds = {r.name: [k for k, _ in r.integrations] for r in cfg.receivers}
    assert kinds == {"oncall": ["webhook", "slack", "log"], "pager": ["pagerduty", "email", "alertmanager"]}
    root = build_routes(cfg)
    assert [r.receiver for r in root.match({"alertname": "GpuHot", "severity": "critical"})] == ["pager", "oncall"]
