"""Details of ``gpuwatch silence``/``ack``/``unack`` a user trips over (issue 15), against a real worker."""

from __future__ import annotations

import json
import time

import pytest
from notify_helpers import eventually as _wait
from notify_helpers import run_cli as _cli

pytestmark = pytest.mark.integration


@pytest.fixture
def worker_env(http_receiver, notify_worker, subprocess_env):
    notify_worker("--webhook", http_receiver().url())
    return subprocess_env


def test_silence_options_after_the_action_and_clear_duration_errors(notify_cmd, worker_env):
    env = worker_env
    made = _cli(notify_cmd, env, "silence", "create", 'node="n1"', "--duration", "10m", "--comment", "x", "--json")
    assert made.returncode == 0, made.stderr
    sid = json.loads(made.stdout)["id"]
    listed = _cli(notify_cmd, env, "silence", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [s["id"] for s in json.loads(listed.stdout)] == [sid]

    negative = _cli(notify_cmd, env, "silence", "create", 'node="n1"', "--duration", "-5m", "--comment", "x")
    assert negative.returncode == 2
    assert "expected one argument" not in negative.stderr
    assert "--duration" in negative.stderr and "-5m" in negative.stderr and "positive" in negative.stderr


def test_silence_expire_with_a_short_or_ambiguous_prefix_asks_for_more(notify_cmd, worker_env):
    env = worker_env
    ids = [json.loads(_cli(notify_cmd, env, "silence", "--json", "create", f'node="n{i}"', "--comment", "x").stdout)
           ["id"] for i in range(2)]
    short = _cli(notify_cmd, env, "silence", "expire", ids[0][:3])
    assert short.returncode == 2
    assert "no silence" not in short.stderr and "at least 6" in short.stderr


def test_an_ambiguous_silence_prefix_names_the_candidates(tmp_path):
    from dataclasses import replace

    from pipelines.notify.matchers import parse_matchers
    from pipelines.notify.silences import SilenceError, Silences
    from pipelines.notify.state_db import StateDB

    silences = Silences(StateDB(tmp_path))
    for sid in ("abcdef111", "abcdef222"):
        s = silences.create(parse_matchers(['node="n1"']), time.time() + 60, "alice", "x")
        silences._save(replace(s, id=sid))
    with pytest.raises(SilenceError, match="abcdef matches 2 silences.*longer prefix"):
        silences.get("abcdef")
    assert silences.get("abcdef1").id == "abcdef111"


def test_ack_list_has_a_gpu_column_and_unack_respects_the_owner(notify_cmd, worker_env, publisher, alert_event):
    env = worker_env
    ev = alert_event(node="n-7", gpu="5")
    publisher.send(ev)
    assert _wait(lambda: ev.fingerprint in _cli(notify_cmd, env, "ack", "--list").stdout)
    listing = _cli(notify_cmd, env, "ack", "--list").stdout
    header = listing.splitlines()[0].split()
    row = next(ln for ln in listing.splitlines() if ev.fingerprint in ln).split()
    assert "GPU" in header and row[header.index("GPU")] == "5" and row[header.index("NODE")] == "n-7"

    assert _cli(notify_cmd, env, "ack", ev.fingerprint, "--owner", "alice").returncode == 0
    bob = _cli(notify_cmd, env, "unack", ev.fingerprint, "--owner", "bob")
    assert bob.returncode == 2 and "alice" in bob.stderr
    assert "alice" in _cli(notify_cmd, env, "ack", "--list").stdout  # alice's ack is still there
    alice = _cli(notify_cmd, env, "unack", ev.fingerprint, "--owner", "alice")
    assert alice.returncode == 0 and "alice" in alice.stdout
