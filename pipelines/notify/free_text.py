"""Free text people type into the notifier (an ack's owner, a silence's author and comment): plain text only.

It is shown back in terminals (``gpuwatch ack --list``, ``silence list``, ``alerts``, ``status``) and in
notifications, so a control character in it is an attack on the next reader, not a name: an escape sequence
can clear or recolour another operator's terminal, or forge lines in a table.
"""

from __future__ import annotations

import re

#: C0 controls (tab allowed in comments), DEL and the C1 controls (a lone 0x9b opens a CSI sequence too).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_CONTROL_ANY = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def plain_text(what: str, value: str, max_chars: int) -> str:
    """``value`` when it is plain text of at most ``max_chars``; otherwise ValueError naming ``what``.

    >>> plain_text("owner", "alice", 200)
    'alice'
    >>> plain_text("owner", "x\\x1b[2Jy", 200)
    Traceback (most recent call last):
    ...
    ValueError: owner holds a control character (\\x1b): plain text only
    """
    m = _CONTROL.search(value)
    if m:
        raise ValueError(f"{what} holds a control character ({m.group()!r}".replace("'", "") + "): plain text only")
    if len(value) > max_chars:
        raise ValueError(f"{what} is {len(value):,} characters long; at most {max_chars:,}")
    return value


def printable(value: object) -> str:
    """``value`` as text safe to print to a terminal: control characters shown escaped, not obeyed.

    >>> printable("evil\\x1b[31mred")
    'evil\\\\x1b[31mred'
    """
    return _CONTROL_ANY.sub(lambda m: repr(m.group())[1:-1], str(value))
