"""Mining a whole file offline, the way the pipeline would: records -> headers -> templates.

Used by ``gpuwatch logs templates`` and ``bench/log_accuracy.py``. Lines are
joined into records with the agent's own rules (:mod:`agents.logrecords`), each
record's header is split off (:mod:`pipelines.logs.headers`) and the message is
mined (:mod:`pipelines.logs.miner`).

Two passes: the first teaches the miner the whole file, the second assigns.
drain generalises a template as it meets more lines ("worker a ready" becomes
"worker <*> ready"); after the first pass every record gets its final template,
the id the pipeline's lineage resolves a stored row to.

>>> rows = assign_lines(["Jun 14 15:16:01 combo su[1]: session opened for user cyrus",
...                      "Jun 14 15:16:02 combo su[2]: session opened for user news", ""])
>>> [(n, text) for n, _, text in rows]
[(1, 'session opened for user <*>'), (2, 'session opened for user <*>'), (3, '')]
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from agents.logrecords import join_records
from pipelines.logs.headers import HeaderParser
from pipelines.logs.miner import TemplateMiner
from schemas.logs import truncate_line


class Assignment(NamedTuple):
    line: int          # 1-based physical line number
    template_id: int   # 0 for a blank line
    template: str


def records(lines: Sequence[str], start_pattern: str | None = None) -> list[tuple[int, str]]:
    """(first line number, record text) for every record of the lines (oversized records truncated)."""
    return [(n, truncate_line(text)) for n, text in join_records(lines, start_pattern)]


def assign_records(lines: Sequence[str], miner: TemplateMiner | None = None, parser: HeaderParser | None = None,
                   source: str = "", start_pattern: str | None = None) -> list[Assignment]:
    """One :class:`Assignment` per record (its first line number), after learning every record."""
    miner = miner or TemplateMiner()
    parser = parser or HeaderParser()
    recs = records(lines, start_pattern)
    messages = [parser.parse(text, source).msg for _, text in recs]
    for msg in messages:
        miner.mine(msg)
    out = []
    for (n, _), msg in zip(recs, messages):
        mined = miner.mine(msg)
        out.append(Assignment(n, mined.template_id, mined.text))
    return out


def assign_lines(lines: Sequence[str], miner: TemplateMiner | None = None, parser: HeaderParser | None = None,
                 source: str = "", start_pattern: str | None = None,
                 by_record: list[Assignment] | None = None) -> list[Assignment]:
    """One :class:`Assignment` per physical line, after learning every record (two passes).

    A continuation line gets its record's template; a blank line gets id 0.
    ``by_record``: :func:`assign_records`'s result, when the caller has it already.
    """
    if by_record is None:
        by_record = assign_records(lines, miner, parser, source, start_pattern)
    out: list[Assignment] = []
    rec = 0
    current = Assignment(0, 0, "")
    for n, line in enumerate(lines, 1):
        if rec < len(by_record) and by_record[rec].line == n:
            current = by_record[rec]
            rec += 1
        if line.strip() and current.template_id:
            out.append(current._replace(line=n))
        else:
            out.append(Assignment(n, 0, ""))
    return out


__all__ = ["Assignment", "assign_lines", "assign_records", "records"]
