"""argparse types for numbers that must lie in a range: one place, so every option says it the same way."""

from __future__ import annotations

import argparse
import math
from typing import Callable


def in_range(parse: Callable[[str], float], low: float, high: float = math.inf, *,
             low_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` parsing with ``parse`` (int or float) and refusing what lies outside [low, high]
    (``(low, high]`` with ``low_open``); NaN is refused too.

    >>> limit = in_range(int, 1, 100_000)
    >>> limit("50")
    50
    >>> limit("-1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: -1 is not from 1 to 100000
    >>> in_range(float, 0, 1, low_open=True)("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: nan is not above 0 and at most 1
    """
    def fmt(x: float) -> str:
        return f"{x:g}" if isinstance(x, float) else str(x)

    if low_open:
        span = f"above {fmt(low)}" + (f" and at most {fmt(high)}" if high != math.inf else "")
    else:
        span = f"from {fmt(low)} to {fmt(high)}" if high != math.inf else f"{fmt(low)} or more"

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'a whole number' if parse is int else 'a number'}") from None
        ok = (low < value if low_open else low <= value) and value <= high  # NaN fails both
        if not ok:
            raise argparse.ArgumentTypeError(f"{text} is not {span}")
        return value

    return convert
