"""Who the pipeline's HTTP endpoints answer: the token's exact scheme, loopback names only without one, and
no cross-site changes through the console (a hostile run of the HTTP surfaces found each of these open)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import SecretStr

from pipelines.console.access import cross_site_reason
from pipelines.web import query_refusal


def settings(token: str | None = None, host: str = "127.0.0.1"):
    return SimpleNamespace(query_token=SecretStr(token) if token else None, web_host=host)


@pytest.mark.parametrize("header, ok", [
    ("Bearer qtok456", True), ("qtok456", False), ("Basic qtok456", False), ("Bearer wrong", False),
    ("Bearer \udcff\udcfe", False),  # a header that is not UTF-8 text was a 500 with a traceback
    (None, False),
])
def test_the_token_needs_the_bearer_scheme(header, ok):
    assert (query_refusal(settings("qtok456"), header, "127.0.0.1:6066") is None) == ok


@pytest.mark.parametrize("host, ok", [
    ("127.0.0.1:6066", True), ("localhost:6066", True), ("[::1]:6066", True), (None, True),
    ("attacker.example:6066", False),  # DNS rebinding: a page re-pointed at 127.0.0.1 read the store
    ("192.168.1.5:6066", False),
])
def test_without_a_token_only_loopback_names_are_answered(host, ok):
    assert (query_refusal(settings(), None, host) is None) == ok


def request(content_type: str | None, origin: str | None = None, host: str = "127.0.0.1:6066"):
    headers = {"Host": host}
    if content_type:
        headers["Content-Type"] = content_type
    if origin:
        headers["Origin"] = origin
    return SimpleNamespace(headers=headers)


@pytest.mark.parametrize("req, ok", [
    (request("application/json", "http://127.0.0.1:6066"), True),  # the console's own fetch
    (request("application/json; charset=utf-8"), True),
    (request("text/plain", "http://evil.example"), False),  # a "simple" cross-site POST: it silenced alerts
    (request("text/plain"), False),
    (request(None), False),
    (request("application/json", "http://evil.example"), False),
])
def test_console_changes_must_be_json_from_the_console_itself(req, ok):
    assert (cross_site_reason(req) is None) == ok
