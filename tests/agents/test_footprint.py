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


def test_gpuwatch_agent_runs_without_openssl_mapped_and_ssl_still_importable_after(tmp_path):
    """libssl and libcrypto (~4-7 MB resident) stay out of the agent; a later ``import ssl`` still works."""
    kern = tmp_path / "kern.log"
    kern.write_text("")
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"node: lean-node\nstate_dir: {tmp_path / 'state'}\ninterval_s: 0.2\n"
                   f"collectors: {{nvml: {{enabled: false}}, xid: {{source: {kern}}}, jobsdk: {{listen: '127.0.0.1:0'}}}}\n")
    probe = f"""
import io, contextlib, sys
from agents.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    rc = main(["--once", "--config", {str(cfg)!r}])
assert rc == 0 and '"kind":"metrics"' in out.getvalue().replace(" ", ""), out.getvalue()[:500]
maps = open("/proc/self/maps").read()
print(sorted({{m for m in ("ssl", "_ssl", "_hashlib") if sys.modules.get(m)}}), "libcrypto" in maps, "libssl" in maps)
import ssl, hashlib
print(ssl.create_default_context().protocol is not None, hashlib.sha256(b"x").hexdigest()[:8])
"""
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines() == ["[] False False", "True 2d711642"], r.stdout
