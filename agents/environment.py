"""Settings from environment variables, read without pydantic-settings.

The agent used pydantic-settings for two things: ``GPUWATCH_AGENT_*``
overrides of its YAML and the three ``GPUWATCH_KAFKA_*`` variables it shares
with the pipeline. That library pulls in asyncio, email, dotenv and a dozen
cloud secret sources, about 2-3 MB of a node agent whose whole budget is
50 MB, for a job this module does in a few lines with the same rules:

* a variable's name is the prefix plus the setting's path, nested keys joined
  with ``__``, case-insensitive (``GPUWATCH_AGENT_COLLECTORS__HOST__ENABLED``);
* only names whose first part is a known top-level setting count (others are
  left alone, as pydantic-settings left them), deeper parts go to the
  validator, which refuses a misspelt one;
* a value that reads as a JSON object or list is that object (``labels``,
  ``paths``), anything else is the string, which pydantic then coerces
  (``"5"`` to 5.0, ``"false"`` to False);
* the environment wins over the file, key by key (a deep merge).

>>> env = {"GPUWATCH_AGENT_INTERVAL_S": "5", "GPUWATCH_AGENT_COLLECTORS__HOST__ENABLED": "false",
...        "GPUWATCH_AGENT_LABELS": '{"rack": "r7"}', "GPUWATCH_AGENT_CONFIG": "/etc/a.yaml", "HOME": "/root"}
>>> over = overrides("GPUWATCH_AGENT_", {"interval_s", "collectors", "labels"}, env)
>>> over == {"interval_s": "5", "collectors": {"host": {"enabled": "false"}}, "labels": {"rack": "r7"}}
True
>>> deep_merge({"collectors": {"host": {"interval_s": 5}}, "node": "a"}, over)["collectors"]
{'host': {'interval_s': 5, 'enabled': 'false'}}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import orjson


def _value(text: str) -> Any:
    if text[:1] in ("{", "["):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # not JSON after all: the validator judges the string
    return text


def overrides(prefix: str, fields: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The nested settings that ``prefix``-named variables in ``environ`` (default: os.environ) set."""
    environ = os.environ if environ is None else environ
    known = set(fields)
    p = prefix.lower()
    out: dict[str, Any] = {}
    for name, text in environ.items():
        low = name.lower()
        if not low.startswith(p):
            continue
        path = low[len(p):].split("__")
        if path[0] not in known or not all(path):
            continue
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        value = _value(text)
        if isinstance(value, dict) and isinstance(node.get(path[-1]), dict):
            value = deep_merge(node[path[-1]], value)
        node[path[-1]] = value
    return out


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on top, mappings merged key by key, anything else replaced."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def dotenv(path: str | os.PathLike = ".env") -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file (``export``, quotes and ``#`` comments allowed); {} if none.

    >>> import tempfile; d = tempfile.mkdtemp(); p = Path(d, ".env")
    >>> _ = p.write_text('# kafka\\nexport GPUWATCH_KAFKA_BOOTSTRAP="b1:9092"\\nBAD LINE\\nX=1\\n')
    >>> dotenv(p)
    {'GPUWATCH_KAFKA_BOOTSTRAP': 'b1:9092', 'X': '1'}
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or " " in key:
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key] = value
    return out


__all__ = ["deep_merge", "dotenv", "overrides"]
