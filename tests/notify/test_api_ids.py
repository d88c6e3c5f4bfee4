"""IDs go into the notify API's URL as one path segment: one command cannot do another's job."""

from __future__ import annotations

import pytest

from pipelines.notify.api_client import ApiError, NotifyApi


@pytest.mark.parametrize("call, value", [
    ("expire_silence", "../acks/cb4e6e14b0f846d7"),  # expired that ack: httpx resolved the dot segments
    ("unack", "../silences/04adf95de75f413088c7dadb619f74b5"),
    ("expire_silence", ""),
    ("expire_silence", ".."),
    ("unack", "a/b"),
    ("unack", "x" * 200),
])
def test_an_id_that_is_not_one_segment_is_refused_before_any_request(call, value):
    api = NotifyApi("http://127.0.0.1:9")  # nothing listens: a request would say so instead
    with pytest.raises(ApiError, match="is not a (silence|incident) ID"):
        getattr(api, call)(value)
