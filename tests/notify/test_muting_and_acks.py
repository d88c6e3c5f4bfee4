"""Inhibition, silences and acks, end to end through the stages to a real HTTP receiver."""

from __future__ import annotations

import asyncio
import time

import pytest
from notify_helpers import ServiceHarness, make_event, webhook_config

from pipelines.notify.acks import AckError
from pipelines.notify.matchers import MatcherError, parse_matchers
from pipelines.notify.silences import SilenceError


def _alerts(rec) -> list[tuple[str, str, str]]:
    return sorted((a["labels"]["alertname"], a["labels"]["node"], a["status"]) for a in rec.json()["alerts"])


def test_inhibition_mutes_targets_with_equal_labels_until_the_source_resolves(http_receiver, tmp_path):
    hook = http_receiver()
    cfg = webhook_config(hook.url(), group_by=["alertname", "node"], group_wait="0.2s", group_interval="0.4s")
    cfg["inhibit_rules"] = [{"source_matchers": ['alertname="NodeDown"'],
                             "target_matchers": ['severity=~"warning|info"'], "equal": ["node"]}]

    async def scenario():
        h = ServiceHarness(cfg, tmp_path)
        down = make_event(alertname="NodeDown", severity="critical", node="n1")
        h.ingest(down, make_event(node="n1"), make_event(node="n2"))
        await asyncio.sleep(0.8)
        sent_while_down = sorted(x for r in hook.received for x in _alerts(r))
        h.ingest(make_event("resolved", alertname="NodeDown", severity="critical", node="n1",
                            starts_at=down.starts_at))
        await asyncio.sleep(0.9)
        await h.close()
        return sent_while_down, h.service.metrics.muted.labels("inhibited")._value.get()

    sent_while_down, inhibited = asyncio.run(scenario())
    assert sent_while_down == [("GpuHot", "n2", "firing"), ("NodeDown", "n1", "firing")]
    later = sorted(x for r in hook.received for x in _alerts(r))
    assert ("GpuHot", "n1", "firing") in later and ("NodeDown", "n1", "resolved") in later
    assert inhibited >= 1


def test_silence_mutes_only_what_it_matches_and_expiry_releases_it(http_receiver, tmp_path):
    hook = http_receiver()

    async def scenario():
        h = ServiceHarness(webhook_config(hook.url(), group_by=["node"]), tmp_path)
        s = h.service.create_silence(parse_matchers(['node=~"n1|n9"']), time.time() + 60, "alice", "reboot")
        h.ingest(make_event(node="n1"), make_event(node="n2"))
        await asyncio.sleep(1.0)
        during = [_alerts(r) for r in hook.received]
        h.service.expire_silence(s.id)
        await asyncio.sleep(0.6)
        await h.close()
        return during, h.history.rows("silences")

    during, rows = asyncio.run(scenario())
    assert during == [[("GpuHot", "n2", "firing")]]
    assert [_alerts(r) for r in hook.received][1:] == [[("GpuHot", "n1", "firing")]]
    assert [r["action"] for r in rows] == ["created", "expired"]
    assert rows[0]["created_by"] == "alice" and rows[0]["matchers"] == 'node=~"n1|n9"'


def test_ack_stops_repeats_but_resolution_still_notifies(http_receiver, tmp_path):
    hook = http_receiver()
    cfg = webhook_config(hook.url(), group_wait="0.1s", group_interval="0.3s", repeat_interval="0.6s")

    async def scenario():
        h = ServiceHarness(cfg, tmp_path)
        ev = make_event(node="n1")
        h.ingest(ev)
        await asyncio.sleep(0.35)
        assert len(hook.received) == 1
        h.service.ack(ev.fingerprint, "bob", "on it")
        await asyncio.sleep(1.6)  # several repeat intervals
        after_ack = len(hook.received)
        h.service.unack(ev.fingerprint, "bob")
        await asyncio.sleep(0.9)
        after_unack = len(hook.received)
        h.service.ack(ev.fingerprint, "carol")
        await asyncio.sleep(0.2)
        mark = len(hook.received)
        h.ingest(make_event("resolved", node="n1", starts_at=ev.starts_at))
        await asyncio.sleep(0.6)
        await h.close()
        return after_ack, after_unack, mark, h.history.rows("alert_acks")

    after_ack, after_unack, mark, rows = asyncio.run(scenario())
    assert after_ack == 1                 # no repeats while acknowledged
    assert after_unack >= 2               # repeats resume once unacked
    assert [r.json()["status"] for r in hook.received[mark:]] == ["resolved"]
    assert [(r["action"], r["owner"]) for r in rows] == [("ack", "bob"), ("unack", "bob"), ("ack", "carol")]
    assert rows[0]["alertname"] == "GpuHot" and rows[0]["node"] == "n1" and rows[0]["starts_at"] > 0


def test_ack_and_silence_refuse_bad_requests(tmp_path):
    async def scenario():
        h = ServiceHarness(webhook_config("http://127.0.0.1:9/x"), tmp_path)
        try:
            with pytest.raises(AckError, match="no firing alert"):
                h.service.ack("0" * 16, "bob")
            ev = make_event(node="n1")
            h.ingest(ev)
            with pytest.raises(AckError, match="owner"):
                h.service.ack(ev.fingerprint, " ")
            with pytest.raises(SilenceError, match="every alert"):
                h.service.create_silence(parse_matchers(['node=~".*"']), time.time() + 60, "a", "b")
            with pytest.raises(SilenceError, match="comment"):
                h.service.create_silence(parse_matchers(['node="n1"']), time.time() + 60, "a", "")
            with pytest.raises(SilenceError, match="future"):
                h.service.create_silence(parse_matchers(['node="n1"']), time.time() - 1, "a", "b")
            # 99999999999h once ended in the year 11409972: the silences table could not be read again
            for ends_at in (time.time() + 99999999999 * 3600, float("inf"), float("nan")):
                with pytest.raises(SilenceError, match="at most 366 days|a finite time"):
                    h.service.create_silence(parse_matchers(['node="n1"']), ends_at, "a", "b")
            with pytest.raises(SilenceError, match="at most 366 days"):
                h.service.create_silence(parse_matchers(['node="n1"']), time.time() + 401 * 86400, "a", "b",
                                         starts_at=time.time() + 400 * 86400)
            with pytest.raises(SilenceError, match="starts at most 366 days ago"):
                h.service.create_silence(parse_matchers(['node="n1"']), time.time() + 60, "a", "b", starts_at=-1e13)
            assert not h.service.silences.list()
        finally:
            await h.close()

    asyncio.run(scenario())


def test_a_refire_after_resolution_is_a_new_unacked_incident(http_receiver, tmp_path):
    hook = http_receiver()
    cfg = webhook_config(hook.url(), group_wait="0.1s", group_interval="0.3s")

    async def scenario():
        h = ServiceHarness(cfg, tmp_path)
        ev = make_event(node="n1")
        h.ingest(ev)
        await asyncio.sleep(0.3)
        h.service.ack(ev.fingerprint, "bob")
        h.ingest(make_event("resolved", node="n1", starts_at=ev.starts_at))
        await asyncio.sleep(0.7)
        again = make_event(node="n1", starts_at=time.time())
        h.ingest(again)
        await asyncio.sleep(0.5)
        view = h.service.alerts_view()
        await h.close()
        return view

    view = asyncio.run(scenario())
    assert [r.json()["status"] for r in hook.received] == ["firing", "resolved", "firing"]
    assert view[0]["acked_by"] == ""


def test_an_ack_by_someone_else_says_whose_it_took_over(tmp_path):
    """A second `gpuwatch ack` replaced alice as owner without a word."""
    async def scenario():
        h = ServiceHarness(webhook_config("http://127.0.0.1:9/x"), tmp_path)
        try:
            ev = make_event(node="n1")
            h.ingest(ev)
            assert h.service.ack(ev.fingerprint, "alice").taken_from == ""
            assert h.service.ack(ev.fingerprint, "alice", "still mine").taken_from == ""
            bob = h.service.ack(ev.fingerprint, "bob")
            assert bob.owner == "bob" and bob.taken_from == "alice" and bob.as_dict()["taken_from"] == "alice"
        finally:
            await h.close()

    asyncio.run(scenario())


def test_owners_authors_comments_and_matcher_values_are_plain_text(tmp_path):
    """An escape sequence in an ack's owner or a silence's author was printed raw by `ack --list`, `alerts`
    and `silence list`: anyone who could reach the API could clear or spoof other operators' terminals."""
    async def scenario():
        h = ServiceHarness(webhook_config("http://127.0.0.1:9/x"), tmp_path)
        try:
            ev = make_event(node="n1")
            h.ingest(ev)
            with pytest.raises(AckError, match="owner holds a control character"):
                h.service.ack(ev.fingerprint, "x\x1b[2Jy")
            with pytest.raises(AckError, match="owner is 201 characters long"):
                h.service.ack(ev.fingerprint, "o" * 201)
            with pytest.raises(SilenceError, match="created_by holds a control character"):
                h.service.create_silence(parse_matchers(['node="n1"']), time.time() + 60, "evil\nauthor", "b")
            with pytest.raises(SilenceError, match="comment holds a control character"):
                h.service.create_silence(parse_matchers(['node="n1"']), time.time() + 60, "a", "\x9b2J")
            with pytest.raises(MatcherError, match="control character"):
                parse_matchers(['node="n\x1b[31m1"'])
            with pytest.raises(MatcherError, match="a quote inside the quoted value"):
                parse_matchers(['alertname="x" -a ""'])  # was kept as the value x" -a "
            assert parse_matchers(['job="a\\"b"'])[0].value == 'a"b'
            assert h.service.ack(ev.fingerprint, "alice\tsmith").owner == "alice\tsmith"
            assert not h.service.silences.list()
        finally:
            await h.close()

    asyncio.run(scenario())


def test_tables_show_control_characters_escaped():
    from pipelines.cli.ack import _firing_table
    from pipelines.cli.silence import _table

    alert = {"status": "firing", "fingerprint": "f" * 16, "labels": {"alertname": "A\x1b[2J", "node": "n1"},
             "acked_by": "x\x1b[31m"}
    assert "\x1b" not in _firing_table([alert]) and "A\\x1b[2J" in _firing_table([alert])
    silence = {"id": "0" * 32, "state": "active", "ends_at": time.time(), "created_by": "a\x07",
               "matchers": ['node="n1"'], "comment": "c\x1b]0;title\x07"}
    assert "\x1b" not in _table([silence]) and "\x07" not in _table([silence])


def test_the_incidents_table_shows_what_alerts_carry_as_text():
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from pipelines.cli.alerts import table

    inc = SimpleNamespace(node="n1", gpu=2, status="firing", silenced=False, severity="critical",
                          alertname="A[red]x", age_s=5, owner="o\x1b[2J", summary="s\x1b]0;t\x07",
                          evidence_text=lambda: "e")
    buf = io.StringIO()
    Console(file=buf, width=200, force_terminal=False).print(table([inc]))
    out = buf.getvalue()
    assert "A[red]x" in out and "o\\x1b[2J" in out and "\x1b" not in out and "\x07" not in out


@pytest.mark.parametrize("matcher", [{"name": "a b", "value": "x"}, {"name": 1, "value": ["x"]}, {"name": ""},
                                     {"name": 'node="x"', "value": "y"}, {"name": "a", "value": "x", "isRegex": "no"}])
def test_object_matchers_that_would_not_read_back_are_refused(matcher):
    """`{"name": "a b"}` was stored as `a b="x"`, which the notifier could not parse at its next start."""
    from pipelines.notify.matchers import Matcher

    with pytest.raises(MatcherError):
        Matcher.from_dict(matcher)


def test_an_unreadable_stored_silence_is_skipped_not_fatal(tmp_path):
    async def scenario():
        h = ServiceHarness(webhook_config("http://127.0.0.1:9/x"), tmp_path)
        h.service.create_silence(parse_matchers(['node="n1"']), time.time() + 60, "a", "b")
        h.db.conn.execute("INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at, "
                          "updated_at) VALUES ('bad', '[\"a b=\\\\\"x\\\\\"\"]', 0, 1e10, 'a', 'b', 0, 0)")
        h.db.conn.commit()
        await h.close()
        again = ServiceHarness(webhook_config("http://127.0.0.1:9/x"), tmp_path)  # raised MatcherError here
        try:
            assert [str(m) for s in again.service.silences.list() for m in s.matchers] == ['node="n1"']
        finally:
            await again.close()

    asyncio.run(scenario())


def test_regex_matchers_run_on_re2_as_alertmanager_does():
    """Python's re backtracks: a silence on alertname=~"Gp(\\w|\\w|\\w)*Z" froze the notifier for every alert.
    RE2 (Go's syntax, as Alertmanager) runs in linear time, and refuses what it cannot run that way."""
    [m] = parse_matchers(['alertname=~"Gp(\\\\w|\\\\w|\\\\w)*Z"'])
    assert not m.matches({"alertname": "Gp" + "a" * 5000})  # Python's re: 3^5000 steps
    assert parse_matchers(['node=~"node-[0-9]+|gpu-.*"'])[0].matches({"node": "node-12"})
    with pytest.raises(MatcherError, match="bad regular expression"):
        parse_matchers(['alertname=~"Gpu(?=Hot)"'])  # a lookahead backtracks; Alertmanager refuses it too
