from __future__ import annotations

import pytest

from tests.stack import Receiver, Stack


@pytest.fixture
def stack(bootstrap, tmp_path, topic_prefix):
    s = Stack(bootstrap=bootstrap, home=tmp_path / "home", prefix=topic_prefix)
    try:
        yield s
    finally:
        s.stop_all()


@pytest.fixture
def receiver():
    r = Receiver()
    try:
        yield r
    finally:
        r.close()
