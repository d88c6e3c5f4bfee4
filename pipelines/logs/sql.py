"""SQL literals for the evidence queries the log pipeline hands to operators.

The queries are shown to people and run as they are, so values are written
in as literals (escaped), not as driver parameters.

>>> sql_str("it's")
"'it\\\\'s'"
>>> ch_time(0)
"toDateTime64('1970-01-01 00:00:00.000', 3, 'UTC')"
"""

from __future__ import annotations

from datetime import datetime, timezone


def sql_str(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ch_time(ts: float) -> str:
    """A readable DateTime64(3, 'UTC') literal for epoch seconds."""
    dt = datetime.fromtimestamp(ts, timezone.utc)
    return f"toDateTime64('{dt:%Y-%m-%d %H:%M:%S}.{dt.microsecond // 1000:03d}', 3, 'UTC')"
