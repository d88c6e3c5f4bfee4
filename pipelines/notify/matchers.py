"""Label matchers, as Alertmanager writes them: ``name="value"``, ``!=``, ``=~``, ``!~``.

Regexes are anchored (they must match the whole value), and a missing label
reads as the empty string, exactly as in Alertmanager.

>>> m = Matcher.parse('node=~"gpu-0[12]"')
>>> m.matches({"node": "gpu-01"}), m.matches({"node": "gpu-013"})
(True, False)
>>> Matcher.parse("severity!=info").matches({})
True
>>> str(Matcher.parse('alertname = "GpuHot"'))
'alertname="GpuHot"'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

import re2

Op = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$', re.S)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
#: Regex values run on RE2, as Alertmanager's do (Go's regexp): linear time whatever the pattern. Python's
#: re backtracks, and a silence like alertname=~"Gp(\w|\w|\w)*Z" froze the notifier's event loop.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.dot_nl = True  # "." matches a newline too, as before
_RE2_OPTIONS.log_errors = False  # a bad pattern is our one-line error, not a log line on stderr as well
#: Longest matcher value (a regex over a few hundred node names fits).
MAX_VALUE_CHARS = 16_384
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class MatcherError(ValueError):
    """A matcher that cannot be parsed or whose regex does not compile."""


def _unquote(raw: str) -> str:
    """A matcher's value: a quoted one unescaped, an unquoted one as it is (Alertmanager allows both).

    A quote that is opened and never closed, or a quote inside an unquoted value, is refused: the value
    would otherwise keep the quote, and a silence on it would match nothing.
    """
    if raw.startswith('"'):
        inner = raw[1:-1] if len(raw) >= 2 else ""
        escapes = len(inner) - len(inner.rstrip("\\"))
        if len(raw) < 2 or not raw.endswith('"') or escapes % 2:
            raise MatcherError(f'unclosed quote in matcher value {raw}; write it as name="value"')
        if re.search(r'(?<!\\)(?:\\\\)*"', inner):  # a quote not escaped: two values run together
            raise MatcherError(f'a quote inside the quoted value {raw}; escape it as \\" (name="a\\"b")')
        return re.sub(r'\\(["\\n])', lambda m: "\n" if m.group(1) == "n" else m.group(1), inner)
    if '"' in raw:
        raise MatcherError(f'a quote in the unquoted value {raw}; quote the value and escape the quote: '
                           'name="a\\"b"')
    return raw


@dataclass(frozen=True)
class Matcher:
    name: str
    op: Op
    value: str
    _regex: Any = field(default=None, compare=False, repr=False)  # an RE2 pattern

    @classmethod
    def create(cls, name: str, op: Op, value: str) -> "Matcher":
        if not isinstance(name, str) or not _NAME.fullmatch(name):  # it must read back from its own text
            raise MatcherError(f"matcher name {name!r} is not a label name (letters, digits, _ . -; not first a digit)")
        if not isinstance(value, str):
            raise MatcherError(f"matcher {name}{op}...: the value must be a string, not {type(value).__name__}")
        if len(value) > MAX_VALUE_CHARS:
            raise MatcherError(f"matcher {name}{op}...: the value is {len(value):,} characters; at most "
                               f"{MAX_VALUE_CHARS:,}")
        bad = _CONTROL.search(value)
        if bad:  # shown back in terminals: an escape sequence would be obeyed there (newline and tab are fine)
            raise MatcherError(f"matcher {name}{op}...: the value holds a control character "
                               f"({repr(bad.group())[1:-1]})")
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re2.compile(f"(?:{value})", _RE2_OPTIONS)
            except re2.error as e:
                reason = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else str(e)
                raise MatcherError(f"matcher {name}{op}{value!r}: bad regular expression: {reason}") from None
        return cls(name, op, value, regex)

    @classmethod
    def parse(cls, text: str) -> "Matcher":
        m = _MATCHER.match(text)
        if not m:
            raise MatcherError(f'cannot parse matcher {text!r}; write it as name="value", name!="value", '
                               f'name=~"regex" or name!~"regex"')
        return cls.create(m.group(1), m.group(2), _unquote(m.group(3)))  # type: ignore[arg-type]

    def matches(self, labels: dict[str, str]) -> bool:
        v = labels.get(self.name, "")
        if self.op == "=":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        hit = self._regex.fullmatch(v) is not None  # type: ignore[union-attr]
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'

    def as_dict(self) -> dict:
        return {"name": self.name, "value": self.value, "isRegex": self.op in ("=~", "!~"),
                "isEqual": self.op in ("=", "=~")}

    @classmethod
    def from_dict(cls, d: dict) -> "Matcher":
        """Alertmanager API form: ``{"name", "value", "isRegex", "isEqual"}``."""
        if not isinstance(d, dict) or "name" not in d or "value" not in d:
            raise MatcherError('a matcher object needs "name" and "value" (and optionally "isRegex", "isEqual")')
        regex, equal = d.get("isRegex", False), d.get("isEqual", True)
        if not isinstance(regex, bool) or not isinstance(equal, bool):
            raise MatcherError("isRegex and isEqual must be true or false")
        op: Op = ("=~" if equal else "!~") if regex else ("=" if equal else "!=")
        return cls.create(d["name"], op, d["value"])


def parse_matchers(items: Iterable[str] | str) -> list[Matcher]:
    """Parse a list of matcher strings, or one ``{a="b", c=~"d"}`` / ``a=b,c=d`` string."""
    if isinstance(items, str):
        body = items.strip()
        if body.startswith("{") and body.endswith("}"):
            body = body[1:-1]
        items = _split_top_level(body)
    return [Matcher.parse(i) for i in items if i.strip()]


def _split_top_level(body: str) -> list[str]:
    parts, cur, quoted, esc = [], [], False, False
    for ch in body:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            cur.append(ch)
            esc = True
        elif ch == '"':
            cur.append(ch)
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def matches_all(matchers: Iterable[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
