"""A notifier config with several mistakes reports all of them in one run (issue 15)."""

from __future__ import annotations

import pytest

from pipelines.notify.config import ConfigError, load_config, parse_config


def test_every_problem_is_reported_at_once():
    doc = {
        "global": {"group_wait": "soon"},
        "route": {"receiver": "nobody", "routes": [{"matchers": ['severity=~"("'], "receiver": "ops"}]},
        "inhibit_rules": [{"source_matchers": ['alertname="A"']}],
        "receivers": [{"name": "ops", "webhook_configs": [{"url": "not a url"}]}, {"slack": 1}],
    }
    with pytest.raises(ConfigError) as e:
        parse_config(doc)
    text = str(e.value)
    for where in ("global.group_wait", "route: receiver 'nobody'", "route.routes[0]", "inhibit_rules[0]",
                  "receivers[0] (ops).webhook_configs[0]", "receivers[1]"):
        assert where in text, (where, text)
    assert text.startswith("6 problems")


def test_one_problem_reads_as_before():
    with pytest.raises(ConfigError, match=r"^route: the top-level route needs a receiver"):
        parse_config({"route": {}, "receivers": [{"name": "a", "log_configs": [{}]}]})


def test_a_config_that_is_not_utf8_is_one_clear_error(tmp_path):
    p = tmp_path / "notify.yaml"
    p.write_bytes(b"\xff\xfe")  # crashed with UnicodeDecodeError
    with pytest.raises(ConfigError, match=r"notify.yaml is not UTF-8 text \(byte 0xff at offset 0\)"):
        load_config(p)


@pytest.mark.parametrize("timing, message", [
    # 0 re-sent every group on every pass: ~1,000 notifications a second to every receiver (a new user's run)
    ({"group_interval": "0s"}, "global.group_interval: group_interval must be at least 100ms"),
    ({"repeat_interval": "0s"}, "global.repeat_interval: repeat_interval must be at least 100ms"),
    ({"repeat_interval": "99999999999999999999y"}, "longer than a year"),
])
def test_intervals_that_would_flood_or_never_come_are_refused(timing, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"global": timing, "route": {"receiver": "a"}, "receivers": [{"name": "a", "log_configs": [{}]}]})
    with pytest.raises(ConfigError, match=message.replace("global.", "route.")):
        parse_config({"route": {"receiver": "a", **timing}, "receivers": [{"name": "a", "log_configs": [{}]}]})


def test_group_wait_may_be_zero():
    cfg = parse_config({"global": {"group_wait": "0s"}, "route": {"receiver": "a"},
                        "receivers": [{"name": "a", "log_configs": [{}]}]})
    assert cfg.global_.group_wait == 0.0


def test_an_alias_that_contains_itself_is_one_line(tmp_path):
    p = tmp_path / "notify.yaml"
    p.write_text("route: &r {receiver: a, routes: [*r]}\nreceivers: [{name: a, log_configs: [{}]}]\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(p)
