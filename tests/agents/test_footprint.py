"""What the agent's process loads: its 50 MB budget has no room for libraries it does not use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Libraries an earlier agent loaded for a few environment variables (pydantic-settings brought asyncio's
#: friends, dotenv, email and a dozen cloud secret sources: 2-3 MB of RSS).
NOT_LOADED = ("pydantic_settings", "dotenv")


def test_the_agent_loads_no_settings_library():
    probe = ("import sys, agents.cli, agents.main, agents.node_agent, agents.collectors, agents.delivery, "
             "agents.kafka_env, agents.config; agents.config.load_config(None); agents.kafka_env.KafkaEnv(); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in %r))" % (NOT_LOADED,))
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]", r.stdout


def test_freed_buffers_go_back_to_the_system():
    """After the tuning, freed 300 kB buffers are unmapped at once instead of staying in the heap.

    Without it glibc raises its mmap threshold after the first such buffer is freed, and later ones,
    served from the heap between longer-lived small blocks, stay resident when freed.
    """
    probe = """
import ctypes
from agents.malloc_tuning import return_freed_memory

def rss_kb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("RssAnon:"))

assert return_freed_memory()
# Allocate and free buffers the size of an encoded batch, as a scrape does, many times over.
for _ in range(50):
    blocks = [ctypes.create_string_buffer(300_000) for _ in range(20)]
    del blocks
before = rss_kb()
blocks, kept = [], []
for _ in range(20):  # each buffer followed by a small long-lived one, as between two scrapes
    blocks.append(ctypes.create_string_buffer(300_000))
    kept.append(ctypes.create_string_buffer(2000))
during = rss_kb()
del blocks
print(during - before, during - rss_kb())
"""
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    grew, returned = (int(x) for x in r.stdout.split())
    assert grew > 4000 and returned > 4000, r.stdout  # ~6 MB taken, and given back when freed
