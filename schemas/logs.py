"""Log batches: lines a node agent tailed, grouped per file and flush."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import EpochSeconds, Labels, NodeId, WireModel

#: Longest log record kept intact; longer ones are cut and marked.
MAX_LINE_CHARS = 16_384
TRUNCATION_MARKER = " …[truncated]"


class LogRecord(WireModel):
    ts: EpochSeconds
    message: str = Field(max_length=MAX_LINE_CHARS + len(TRUNCATION_MARKER))
    level: str = Field(default="", max_length=16)
    source: str = Field(default="", max_length=512, description="file path or stream name")
    labels: Labels = Field(default_factory=dict)


class LogBatch(WireModel):
    v: Literal[1] = 1
    kind: Literal["logs"] = "logs"
    node: NodeId
    records: list[LogRecord] = Field(min_length=1, max_length=50_000)


def truncate_line(line: str) -> str:
    """Cut an oversized record and say so, rather than dropping it.

    >>> truncate_line("x" * 5)
    'xxxxx'
    >>> truncate_line("x" * 20_000).endswith(TRUNCATION_MARKER)
    True
    """
    if len(line) <= MAX_LINE_CHARS:
        return line
    return line[:MAX_LINE_CHARS] + TRUNCATION_MARKER
