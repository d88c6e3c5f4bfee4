"""The notifier's HTTP API answers bad requests with a 4xx and one line of JSON, never a 500."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer
from notify_helpers import ServiceHarness, make_event, webhook_config

from pipelines.notify.api import build_app

AUTH = {"Authorization": "Bearer tok"}


def _run(tmp_path, requests):
    async def scenario():
        h = ServiceHarness(webhook_config("http://127.0.0.1:9/x"), tmp_path)
        ev = make_event(node="n1")
        h.ingest(ev)
        client = TestClient(TestServer(build_app(h.service, token="tok")))
        await client.start_server()
        try:
            out = []
            for method, path, kw in requests(ev):
                r = await client.request(method, path, **kw)
                out.append((r.status, await r.json()))
            return out, [s.as_dict() for s in h.service.silences.list()]
        finally:
            await client.close()
            await h.close()

    return asyncio.run(scenario())


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,  # RecursionError in the json module: a 500
    '{"matchers": [{}], "duration": "1h", "created_by": "a", "comment": "b"}',  # answered {"error": "'name'"}
    '{"matchers": ["node=\\"n1\\""], "duration": "1h", "created_by": {"x": 1}, "comment": "b"}',  # kept "{'x': 1}"
    '{"matchers": ["node=\\"n1\\""], "duration": "1h", "created_by": "a", "comment": null}',  # kept "None"
], ids=["deep-nesting", "empty-matcher", "author-object", "comment-null"])
def test_bad_silence_requests_are_400_and_store_nothing(tmp_path, body):
    [(status, answer)], stored = _run(tmp_path, lambda ev: [("POST", "/api/v1/silences", {"data": body,
                                                                                          "headers": AUTH})])
    assert status == 400 and isinstance(answer["error"], str) and answer["error"] != "'name'", answer
    assert stored == []


def test_bad_ack_requests_are_400(tmp_path):
    answers, _ = _run(tmp_path, lambda ev: [
        ("POST", "/api/v1/acks", {"data": '{"fingerprint": "%s", "owner": {"a": 1}}' % ev.fingerprint,
                                  "headers": AUTH}),
        ("POST", "/api/v1/acks", {"data": "null", "headers": AUTH}),
    ])
    assert [s for s, _ in answers] == [400, 400]
    assert "owner must be a string" in answers[0][1]["error"] and "NoneType" not in answers[1][1]["error"]


def test_an_authorization_header_that_is_not_text_is_401(tmp_path):
    answers, _ = _run(tmp_path, lambda ev: [
        ("POST", "/api/v1/silences", {"data": "{}", "headers": {"Authorization": "Bearer \udcff\udcfe"}}),
    ])
    assert answers[0][0] == 401


def test_the_servers_own_refusals_are_json(tmp_path):
    answers, _ = _run(tmp_path, lambda ev: [
        ("GET", "/api/v1/nothing-here", {}),
        ("PUT", "/api/v1/silences", {"headers": AUTH}),
        ("POST", "/api/v1/silences", {"data": "x" * (2 << 20), "headers": AUTH}),
    ])
    assert [s for s, _ in answers] == [404, 405, 413]
    assert all(isinstance(a["error"], str) for _, a in answers)
