"""Masking a log message's variable parts, one whole token at a time.

Why whole tokens: a mask inside an identifier (``clients<NUM>.google.com``,
``ssh<NUM>``) leaves a token that is neither constant nor a wildcard, so one
event splits into hundreds of groups. Here a token is a run of characters up to
whitespace or one of ``,;()[]{}"'=|``; a token holding a digit is a variable
(an IP, ``host:port``, a hex id, a path with a number, a block id, ``0x7f..``)
and becomes ``<*>``, drain's own wildcard, so it neither picks a tree branch
nor counts as matching text. ``key=value`` keeps its key and loses its value,
digits or not (``name=com.android.phone``, ``tag="View Lock"``). A number with a unit
(``5.2 KB``, ``160 ms``, ``<1 sec``) is one variable, and so are a list of
variables (``<*>,<*>``, ``<*>, <*>``) and a variable with a variable in
parentheses after it (``1190 (1.16 KB)``).

Every rule treats the digits 0-9 alike, which the miner's fast path relies on.

>>> mask("Received block blk_-3909548841543565741 of size 3542967 from /10.251.195.33")
'Received block <*> of size <*> from <*>'
>>> mask("connect to clients4.google.com:443 took 12.5 ms, peers 10.0.0.1,10.0.0.2")
'connect to <*> took <*>, peers <*>'
>>> mask("session opened for user news by (uid=0)")
'session opened for user news by (uid=<*>)'
>>> mask('acquire lock=233570404, tag="View Lock", name=com.android.systemui, ws=null')
'acquire lock=<*>, tag=<*>, name=<*>, ws=<*>'
"""

from __future__ import annotations

import re

WILDCARD = "<*>"
_UNITS = (r"(?:[KMGTPE]i?B|[kKMGT]b(?:ps|/s)?|B|bytes?|ms|msecs?|us|µs|ns|s|secs?|seconds?|mins?|minutes?|h|hrs?"
          r"|hours?|days?|%)")
#: A number with a unit. It starts with ``\d`` (not a lookbehind) so that the regex engine skips ahead to
#: digits in C; the lookbehind after the first digit keeps it from starting inside a word or number.
_QUANTITY = re.compile(rf"\d(?<![\w.]\d)\d*(?:\.\d+)?(?:e[-+]?\d+)? ?{_UNITS}(?![\w])")
#: A token holding a digit; the lookbehind makes a match start only where a token starts (linear time).
_TOKEN = re.compile(r"(?<![^\s,;()\[\]{}\"'=|])[^\s,;()\[\]{}\"'=|]*\d[^\s,;()\[\]{}\"'=|]*")
#: The value of ``key=value`` (a word or a double-quoted string, and a bracketed part glued to the word,
#: ``ws=WorkSource{10113}``): variable with or without digits.
_VALUE = re.compile(r'(?<=[\w\]]=)(?:"[^"]*"|[^\s,;()\[\]{}"'"'"'=|<]+(?:\{[^\s{}]*\}|\([^\s()]*\)|\[[^\s\[\]]*\])?)')
_PREFIXED = ("<<*>", "><*>", "~<*>", "-<*>", "+<*>")
_LIST = re.compile(r"<\*>(?:, ?<\*>)+")


def mask(text: str) -> str:
    """``text`` with every variable token replaced by ``<*>``."""
    text = _TOKEN.sub(WILDCARD, _QUANTITY.sub(WILDCARD, text))
    if "=" in text:
        text = _VALUE.sub(WILDCARD, text)
    for prefixed in _PREFIXED:  # "<1 sec", "~5 ms", "+722ms": the sign belongs to the variable
        if prefixed in text:
            text = text.replace(prefixed, WILDCARD)
    if ",<*>" in text or ", <*>" in text:
        text = _LIST.sub(WILDCARD, text)
    if "<*> (<*>)" in text:  # "1190 bytes (1.16 KB)": a value and its humanised form, present or not, are one
        text = text.replace("<*> (<*>)", WILDCARD)
    return text


__all__ = ["WILDCARD", "mask"]
