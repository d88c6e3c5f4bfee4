"""Incidents: one firing per incident, one resolved, stable fingerprints, channels kept apart."""

from __future__ import annotations

import pickle

from pipelines.decide import Condition, IncidentBook


def cond(name: str, ts: float, channel: str = "metrics", **kw) -> Condition:
    return Condition(name, {"node": "n1", "gpu": "0"}, ts=ts, node="n1", channel=channel, **kw)


def test_one_firing_event_per_incident_however_long_it_lasts():
    book = IncidentBook()
    statuses = [e.status for t in range(100) for e in book.observe("n1", float(t), [cond("Hot", float(t))])]
    statuses += [e.status for e in book.observe("n1", 100.0, [])]
    assert statuses == ["firing", "resolved"]


def test_a_new_incident_after_resolution_has_the_same_fingerprint_but_a_new_start():
    book = IncidentBook()
    first = book.observe("n1", 1.0, [cond("Hot", 1.0)])[0]
    book.observe("n1", 2.0, [])
    again = book.observe("n1", 50.0, [cond("Hot", 50.0)])[0]
    assert first.fingerprint == again.fingerprint and first.event_id != again.event_id


def test_events_channel_is_not_cleared_by_metric_scrapes_but_expires_by_time():
    book = IncidentBook()
    [fired] = book.observe("n1", 10.0, [cond("Xid", 10.0, channel="events", keep_firing_for_s=60)],
                           channel="events", clears=False)
    assert fired.status == "firing"
    assert book.observe("n1", 20.0, [], channel="metrics") == []
    assert book.sweep(50.0, "events") == []
    [resolved] = book.sweep(71.0, "events")
    assert resolved.status == "resolved" and resolved.ends_at == 71.0


def test_the_book_survives_pickling_with_its_open_incidents():
    book = IncidentBook()
    book.observe("n1", 1.0, [cond("Hot", 1.0)])
    restored = pickle.loads(pickle.dumps(book))
    assert restored.observe("n1", 2.0, [cond("Hot", 2.0)]) == []  # still firing: no second alert
    assert [e.status for e in restored.observe("n1", 3.0, [])] == ["resolved"]
