"""Where each Kafka partition's rows end in a table that records its source (issue 10).

A replay after a crash or a partition move re-reads messages whose rows are
already stored (the offset commit trails the store), and the sink skips them
(:meth:`pipelines.sinks.clickhouse.ClickHouseSink.stored_upto`). Finding
where to resume used to mean ``max(src_offset)`` over every row the partition
ever wrote: a full scan that grows with the table, run on the worker's event
loop when it takes a partition over, and one that would span every shard of a
cluster. It also forgot the point once old rows expired (TTL) or were dropped,
so a replay stored them again.

The ``resume_points`` table (``schemas/clickhouse/005_resume_points.sql``)
keeps one row per insert and partition: (table, partition, last offset). It is
written *after* the rows it vouches for, so a point never claims more than is
stored; a crash between the two leaves it behind, and the reader then scans
only the offsets above it (a min-max index keeps that to the newest granules).
Writing a point is best effort: a lagging point costs a longer scan, never a
lost or doubled row.
"""

from __future__ import annotations

from typing import Mapping

from pipelines.store import Store

TABLE = "resume_points"
COLUMNS = ("source_table", "partition", "src_offset")


class ResumePoints:
    """Reads and writes the resume points of the tables whose rows carry (partition, offset) columns."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def stored_upto(self, table: str, source_columns: tuple[str, str], partition: int) -> int:
        """Highest offset of ``partition`` stored in ``table``, or -1: the point, then any rows above it."""
        db, partition = self.store.database, int(partition)
        point = self._highest(f"SELECT max(src_offset), count() FROM {db}.{TABLE} "
                              f"WHERE source_table = {{table:String}} AND partition = {partition}", {"table": table})
        part_col, off_col = source_columns
        above = self._highest(f"SELECT max({off_col}), count() FROM {db}.{table} "
                              f"WHERE {part_col} = {partition} AND {off_col} >= {point + 1}")
        return max(point, above)

    def _highest(self, sql: str, parameters: dict | None = None) -> int:
        mx, n = self.store.query(sql, parameters=parameters).rows[0]
        return int(mx) if n else -1

    def record(self, table: str, ranges: Mapping[int, list[int]]) -> None:
        """After an insert into ``table`` of rows from ``ranges`` (partition -> [first, last] offset)."""
        if ranges:
            self.store.insert(TABLE, [(table, p, last) for p, (_, last) in sorted(ranges.items())], COLUMNS)
