"""Template mining: masks, stable ids across restarts and workers, and the fast path."""

from __future__ import annotations

import random

import pytest
from drain3 import TemplateMiner as PlainDrain3
from drain3.template_miner_config import TemplateMinerConfig

from pipelines.logs.miner import MASKS, GuardedMask, TemplateMiner, template_id


@pytest.mark.parametrize("line, masked", [
    ("step 1234 loss 2.3456 lr 3.0e-04", "step <NUM> loss <NUM> lr <NUM>"),
    ("addr 0x7f3a2b1c freed, digest 9f86d081884c7d65", "addr <HEX> freed, digest <HEX>"),
    ("GPU at 0000:3b:00.0 and PCI:0000:86:00 and 00000000:3B:00.0", "GPU at <PCI> and PCI:<PCI> and <PCI>"),
    ("job 123e4567-e89b-12d3-a456-426614174000 on GPU-5f3e8a2c-1b2d-4e5f-8a9b-0c1d2e3f4a5b",
     "job <UUID> on GPU-<UUID>"),
    ("opened /dev/nvidia3 and ./run.sh and ~/ckpt/step_10.pt", "opened <PATH> and <PATH> and <PATH>"),
    ("peer 10.0.0.12:29500 and fe80::1ff:fe23:4567:890a and 2001:db8:85a3:0:0:8a2e:370:7334",
     "peer <IP> and <IP> and <IP>"),
    ("plain words stay as they are", "plain words stay as they are"),
])
def test_masks_each_kind(line, masked):
    assert TemplateMiner().mask(line) == masked


def test_masks_ignore_digit_values_so_the_fast_path_is_exact():
    """The fast path caches on the line with the digits 1-9 folded into one; that is only
    right if masking cannot tell those digits apart."""
    rng = random.Random(5)
    miner = TemplateMiner()
    alphabet = "0123456789abcdefxX:./-_ =~@ghGPU"
    for _ in range(3000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 60)))
        folded = line.translate(str.maketrans("23456789", "11111111"))
        assert miner.mask(line) == miner.mask(folded), line


def test_ids_match_plain_drain3_on_a_mixed_stream():
    """The caches must never change what drain3 would decide."""
    config = TemplateMinerConfig()
    config.masking_instructions = [GuardedMask(p, name, needs) for name, p, needs in MASKS]
    plain = PlainDrain3(config=config)
    ours = TemplateMiner()
    rng = random.Random(11)
    words = ["alpha", "beta", "gamma", "delta"]
    for i in range(4000):
        k = rng.randrange(4)
        line = [f"step {i} loss {rng.random():.3f}",
                f"worker {rng.choice(words)} took {rng.randrange(100)} ms from 10.0.{i % 9}.{i % 7}",
                f"block 0x{rng.getrandbits(32):08x} freed by {rng.choice(words)} {rng.choice(words)}",
                f"{rng.choice(words)} {rng.choice(words)} done"][k]
        expected = plain.add_log_message(line)["template_mined"]
        got = ours.mine(line)
        assert got.text == expected
        assert got.template_id == template_id(expected)


def test_template_ids_survive_a_restart(tmp_path):
    state = tmp_path / "miner.json"
    lines = ["GPU 0 temperature 81 C", "GPU 1 temperature 64 C", "checkpoint saved to /ckpt/a in 3.2s",
             "worker alpha ready", "worker beta ready"]
    first = TemplateMiner(state)
    for line in lines:
        first.mine(line, ts=1000.0)
    before = [first.mine(line) for line in lines]  # after learning: "worker <*> ready"
    first.close()

    second = TemplateMiner(state)
    after = [second.mine(line) for line in lines]
    assert [m.template_id for m in after] == [m.template_id for m in before]
    assert all(m.change == "none" for m in after), "a restarted miner must not find known templates new"
    assert second.born_ts == 1000.0 and second.lines_mined == 3 * len(lines)
    # a line that generalises a cluster after the restart lands on the same cluster as before it would have
    assert second.mine("worker gamma ready").template_id == template_id("worker <*> ready")


def test_a_second_worker_gets_the_same_ids_without_sharing_state(tmp_path):
    a, b = TemplateMiner(tmp_path / "a.json"), TemplateMiner(tmp_path / "b.json")
    line = "NCCL INFO Channel 03/0 : 1[1] -> 2[2] via P2P/IPC/read"
    assert a.mine(line).template_id == b.mine(line).template_id


def test_seeding_teaches_a_fresh_worker_the_fleet_templates():
    veteran = TemplateMiner()
    for w in ("alpha", "beta", "gamma"):
        veteran.mine(f"worker {w} ready")
    fleet = veteran.templates()
    fresh = TemplateMiner()
    assert fresh.seed(fleet.values()) == 1
    mined = fresh.mine("worker delta ready")
    assert mined.template_id in fleet and mined.change == "none"


def test_checkpoint_is_throttled_and_close_writes(tmp_path):
    state = tmp_path / "m.json"
    m = TemplateMiner(state, snapshot_interval_s=3600)
    m.mine("hello world")
    assert m.checkpoint() is False and not state.exists()  # interval not over yet
    m.close()
    assert state.exists()


def test_a_corrupt_state_file_is_set_aside_not_fatal(tmp_path):
    state = tmp_path / "m.json"
    state.write_bytes(b"{not json")
    m = TemplateMiner(state)
    assert m.cluster_count == 0
    assert (tmp_path / "m.json.corrupt").exists()
    assert m.mine("still works 1").text == "still works <NUM>"
