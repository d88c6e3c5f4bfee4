"""Durations as people write them in Alertmanager configs: ``30s``, ``5m``, ``1h30m``, ``500ms``.

>>> parse_duration("1h30m"), parse_duration("500ms"), parse_duration(2)
(5400.0, 0.5, 2.0)
>>> format_duration(5400.0)
'1h30m'
"""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_duration(value: str | int | float) -> float:
    """Seconds in a duration string or number; raises ValueError with the accepted forms."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"duration {value} must not be negative")
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if not text or not re.fullmatch(rf"(?:{_PART.pattern})+", text):
        raise ValueError(f"cannot read duration {value!r}; write it like 30s, 5m, 4h, 1h30m or 500ms")
    return float(sum(float(n) * _UNIT[u] for n, u in _PART.findall(text)))


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out, rest = [], int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out) or "0s"
