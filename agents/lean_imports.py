"""Load the agent's libraries without Python's OpenSSL bindings, which it never uses: ~4-7 MB of RSS.

Two imports map OpenSSL's libssl and libcrypto into the agent for nothing:

* ``import confluent_kafka`` imports asyncio (for an asyncio producer the
  agent does not use), and asyncio imports ``ssl`` if it can. The agent's TLS
  to Kafka is librdkafka's own, statically linked.
* pydantic imports ``secrets``, which imports ``hashlib``, which binds
  OpenSSL's digests through ``_hashlib`` if it can. The agent hashes nothing;
  without ``_hashlib``, hashlib serves every common digest from CPython's
  built-in implementations.

Both are written to work without those modules (``try: import ssl except
ImportError``), so :func:`import_without_openssl` marks ``ssl`` and
``_hashlib`` as missing while it imports the agent's modules, then removes the
marks: a later ``import ssl`` (httpx for an ``https://`` scrape target, which
the agent imports only then) loads it as usual. Modules already imported (the
full ``gpuwatch`` CLI loaded them) are left as they are.

Run it only at the start of an agent process (``gpuwatch-agent``), never on
import of a module: a process that does want OpenSSL's digests must not lose
them because it imported something from ``agents``.

>>> import subprocess, sys
>>> probe = ("from agents.lean_imports import import_without_openssl; import sys; "
...          "import_without_openssl(['agents.main', 'confluent_kafka']); "
...          "print(sorted(m for m in ('ssl', '_ssl', '_hashlib') if sys.modules.get(m)))")
>>> subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
'[]\\n'
"""

from __future__ import annotations

import importlib
import sys
from typing import Iterable

#: What the agent imports at start: its own modules (pydantic with them) and the Kafka client.
AGENT_MODULES = ("agents.config", "agents.main", "agents.node_agent", "agents.collectors", "agents.delivery",
                 "confluent_kafka")
_OPENSSL_BINDINGS = ("ssl", "_hashlib")


def import_without_openssl(modules: Iterable[str] = AGENT_MODULES) -> None:
    """Import ``modules`` with ``ssl`` and ``_hashlib`` unavailable to them (unless something loaded them already)."""
    marked = [m for m in _OPENSSL_BINDINGS if m not in sys.modules]
    for m in marked:
        sys.modules[m] = None  # type: ignore[assignment]  # "import m" raises ImportError meanwhile
    try:
        for name in modules:
            importlib.import_module(name)
    finally:
        for m in marked:
            if m in sys.modules and sys.modules[m] is None:
                del sys.modules[m]


__all__ = ["AGENT_MODULES", "import_without_openssl"]
