"""Plain aligned tables for the terminal, with every cell made printable.

Cells hold what people and agents typed (an ack's owner, a silence's comment, a job's label): a control
character in one is shown escaped, never obeyed by the reader's terminal.
"""

from __future__ import annotations

from pipelines.notify.free_text import printable


def aligned(rows: list[tuple]) -> str:
    """``rows`` (a header first) in columns two spaces apart; the last column is not padded.

    >>> print(aligned([("ID", "WHO"), ("a1", "x\\x1b[2Jy")]))
    ID  WHO
    a1  x\\x1b[2Jy
    """
    cells = [[printable(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in cells)
