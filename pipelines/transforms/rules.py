"""Threshold rules with Prometheus semantics, loaded from YAML.

A rule watches one metric on every series (node, GPU) and reports a
:class:`~pipelines.decide.Condition` while its comparison holds; ``for`` and
``keep_firing_for`` are handled by the incident book, in event time. Counter
metrics use ``function: increase`` over a ``window``.

>>> rules = RuleSet.from_yaml('''
... groups:
...   - name: g
...     rules:
...       - alert: Hot
...         metric: gpu_temp_c
...         op: ">"
...         threshold: 85
...         for: 10s
... ''')
>>> [c.alertname for c in rules.evaluate("n1", [(100.0, 0, "GPU-0", "gpu_temp_c", 90.0, {})])]
['Hot']
"""

from __future__ import annotations

import operator
import re
from collections import deque
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.decide.condition import Condition
from schemas.alerts import Evidence

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
        "!=": operator.ne}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class RuleError(ValueError):
    """A rule file that cannot be used; the text names the rule and the problem."""


def parse_duration(v: str | int | float) -> float:
    """
    >>> parse_duration("90s"), parse_duration("5m"), parse_duration(3)
    (90.0, 300.0, 3.0)
    """
    if isinstance(v, (int, float)):
        return float(v)
    m = _DURATION.match(str(v).strip())
    if not m:
        raise ValueError(f"duration {v!r} must look like 30s, 5m, 1h or 500ms")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    alert: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    metric: str
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: float
    function: Literal["value", "increase"] = "value"
    window: float = 60.0
    for_: float = Field(default=0.0, alias="for")
    keep_firing_for: float = 0.0
    severity: Literal["info", "warning", "critical"] = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    #: Only series whose sample labels match all of these (exact) are evaluated.
    match: dict[str, str] = Field(default_factory=dict)

    @field_validator("window", "for_", "keep_firing_for", mode="before")
    @classmethod
    def _durations(cls, v):
        return parse_duration(v)

    @field_validator("annotations")
    @classmethod
    def _templates_render(cls, v: dict[str, str]) -> dict[str, str]:
        """Each annotation formats with the fields a firing rule has; a typo was sent to people unrendered."""
        sample = {"node": "n", "gpu": 0, "uuid": "u", "job": "j", "value": 1.5, "threshold": 1.0}
        for key, template in v.items():
            try:
                template.format_map(sample)
            except KeyError as e:
                raise ValueError(f"annotation {key!r}: unknown field {{{e.args[0]}}}; use "
                                 f"{', '.join('{' + f + '}' for f in sample)}") from None
            except (ValueError, IndexError, AttributeError) as e:
                raise ValueError(f"annotation {key!r}: {e}") from None
        return v


@dataclass
class _CounterHistory:
    points: deque = field(default_factory=deque)


class _SafeFormat(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _matches(rule: Rule, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in rule.match.items())


def _render(template: str, ctx: dict) -> str:
    try:
        return template.format_map(_SafeFormat(ctx))
    except (ValueError, TypeError, IndexError):
        return template


RuleSample = tuple[float, int, str, str, float, dict]  # ts, gpu, uuid, metric, value, labels


class RuleSet:
    """All loaded rules, indexed by metric, with per-series counter history for ``increase``."""

    def __init__(self, rules: Iterable[Rule], database: str = "gpuwatch") -> None:
        self.rules = list(rules)
        self.database = database
        self._by_metric: dict[str, list[Rule]] = {}
        for r in self.rules:
            self._by_metric.setdefault(r.metric, []).append(r)
        self._history: dict[tuple[str, int, str, float], _CounterHistory] = {}
        #: node -> (its last batch's metric names, positions of each ruled metric among them): a node
        #: sends the same names in the same order tick after tick (derived; rebuilt when they change)
        self._positions: dict[str, tuple[list[str], dict[str, np.ndarray]]] = {}

    @classmethod
    def from_yaml(cls, text: str, source: str = "<rules>", **kw) -> "RuleSet":
        try:
            doc = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError) as e:
            raise RuleError(f"{source}: not valid YAML: {e}") from None
        # a typo in the layout must not load nothing quietly: that is threshold alerting switched off
        if not isinstance(doc, dict) or "groups" not in doc:
            raise RuleError(f"{source}: expected a mapping with a 'groups:' list (see pipelines/rules/default.yaml)")
        if set(doc) != {"groups"}:
            extra = ", ".join(map(repr, sorted(set(doc) - {"groups"}, key=str)))
            raise RuleError(f"{source}: unknown top-level key(s) {extra}; only 'groups' is read")
        if not isinstance(doc["groups"], list):
            raise RuleError(f"{source}: 'groups' must be a list of groups")
        rules = []
        for gi, group in enumerate(doc["groups"]):
            if not isinstance(group, dict) or not isinstance(group.get("rules"), list):
                raise RuleError(f"{source}: group #{gi} must be a mapping with a 'rules:' list")
            unknown = set(group) - {"name", "rules"}
            if unknown:
                raise RuleError(f"{source}: group {group.get('name', gi)!r}: unknown key(s) "
                                f"{', '.join(map(repr, sorted(unknown, key=str)))}; a group has 'name' and 'rules'")
            for ri, raw in enumerate(group["rules"]):
                try:
                    rules.append(Rule.model_validate(raw))
                except ValidationError as e:
                    name = raw.get("alert", f"#{ri}") if isinstance(raw, dict) else f"#{ri}"
                    first = e.errors()[0]
                    where = ".".join(str(p) for p in first["loc"]) or "rule"
                    msg = first["msg"].removeprefix("Value error, ")
                    raise RuleError(f"{source}: group {group.get('name', gi)!r} rule {name!r}: "
                                    f"{where}: {msg}") from None
        return cls(rules, **kw)

    @classmethod
    def from_file(cls, path: str | Path | None = None, **kw) -> "RuleSet":
        if path is None:
            return cls.from_yaml(resources.files("pipelines.rules").joinpath("default.yaml").read_text(),
                                 "default.yaml", **kw)
        p = Path(path)
        if not p.exists():
            raise RuleError(f"rule file {p} does not exist")
        if not p.is_file():
            raise RuleError(f"rule file {p} is not a file")
        try:
            text = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise RuleError(f"rule file {p} is not UTF-8 text") from None
        except OSError as e:
            raise RuleError(f"rule file {p}: {e.strerror}") from None
        return cls.from_yaml(text, str(p), **kw)

    def evaluate(self, node: str, samples: Iterable[RuleSample]) -> list[Condition]:
        out: list[Condition] = []
        by_metric = self._by_metric
        for ts, gpu, uuid, metric, value, labels in samples:
            rules = by_metric.get(metric)
            if not rules:
                continue
            for rule in rules:
                if rule.match and any(labels.get(k) != v for k, v in rule.match.items()):
                    continue
                observed = value if rule.function == "value" else self._increase(rule, node, gpu, metric, ts, value)
                if observed is None or not _OPS[rule.op](observed, rule.threshold):
                    continue
                out.append(self._condition(rule, node, gpu, uuid, ts, observed, labels))
        return out

    def evaluate_columns(self, node: str, ts: np.ndarray, gpu: np.ndarray, uuid: list[str], metric: list[str],
                         value: np.ndarray, labels: list[dict]) -> list[Condition]:
        """:meth:`evaluate` over one batch's columns: a comparison per rule over all its samples at once.

        Same conditions, in the same order (sample, then rule). Only ``increase`` rules and
        ``match`` filters look at samples one by one, and only at the samples of their metric.

        >>> rules = RuleSet.from_yaml('groups: [{name: g, rules: [{alert: Hot, metric: t, op: ">", threshold: 85}]}]')
        >>> [c.labels["gpu"] for c in rules.evaluate_columns("n1", np.array([1.0, 1.0]), np.array([0, 1]),
        ...     ["", ""], ["t", "t"], np.array([90.0, 80.0]), [{}, {}])]
        ['0']
        """
        by_metric = self._by_metric
        found: list[tuple[int, int, Condition]] = []
        for m, ix in self._ruled_positions(node, metric).items():
            counters = []
            for pos, rule in enumerate(by_metric[m]):
                if rule.function != "value":
                    counters.append((pos, rule))
                    continue
                ix_r = ix if not rule.match else np.array(
                    [i for i in ix.tolist() if _matches(rule, labels[i])], np.intp)
                observed = value[ix_r]
                for h in np.flatnonzero(_OPS[rule.op](observed, rule.threshold)).tolist():
                    i = int(ix_r[h])
                    found.append((i, pos, self._condition(rule, node, int(gpu[i]), uuid[i], float(ts[i]),
                                                          float(observed[h]), labels[i])))
            if not counters:
                continue
            # counter history: sample by sample, as evaluate(), the samples' columns as Python lists once
            for i, g, t, v in zip(ix.tolist(), gpu[ix].tolist(), ts[ix].tolist(), value[ix].tolist()):
                for pos, rule in counters:
                    if rule.match and not _matches(rule, labels[i]):
                        continue
                    inc = self._increase(rule, node, g, m, t, v)
                    if inc is not None and _OPS[rule.op](inc, rule.threshold):
                        found.append((i, pos, self._condition(rule, node, g, uuid[i], t, inc, labels[i])))
        found.sort(key=lambda f: (f[0], f[1]))
        return [c for _, _, c in found]

    def _ruled_positions(self, node: str, metric: list[str]) -> dict[str, np.ndarray]:
        """Where each metric some rule watches sits in ``metric``; the node's last answer when its names
        have not changed. Comparing the names costs ~2 us a batch; finding them again cost ~25 (issue 10)."""
        last = self._positions.get(node)
        if last is not None and last[0] == metric:
            return last[1]
        by_metric = self._by_metric
        found: dict[str, list[int]] = {}
        for i, m in enumerate(metric):
            if m in by_metric:
                found.setdefault(m, []).append(i)
        positions = {m: np.array(ix, np.intp) for m, ix in found.items()}
        self._positions[node] = (list(metric), positions)
        return positions

    def forget_node(self, node: str) -> None:
        """Drop ``node``'s counter history (its partition moved to another worker)."""
        for key in [k for k in self._history if k[0] == node]:
            del self._history[key]
        self._positions.pop(node, None)

    def _increase(self, rule: Rule, node: str, gpu: int, metric: str, ts: float, value: float) -> float | None:
        key = (node, gpu, metric, rule.window)
        h = self._history.get(key)
        if h is None:
            h = self._history[key] = _CounterHistory()
        pts = h.points
        pts.append((ts, value))
        while pts and pts[0][0] < ts - rule.window:
            pts.popleft()
        if len(pts) < 2:
            return None
        base = pts[0][1]
        return value - base if value >= base else value  # a counter reset counts from zero

    def _condition(self, rule: Rule, node: str, gpu: int, uuid: str, ts: float, observed: float,
                   labels: dict) -> Condition:
        ident = {"node": node, "severity": rule.severity, **rule.labels}
        if gpu >= 0:
            ident["gpu"] = str(gpu)
        if uuid:
            ident["uuid"] = uuid
        ctx = {"node": node, "gpu": gpu, "uuid": uuid, "job": labels.get("job", ""), "value": observed,
               "threshold": rule.threshold}
        annotations = {k: _render(v, ctx) for k, v in rule.annotations.items()}
        if labels.get("job"):
            annotations.setdefault("job", labels["job"])
        what = "increase over %gs" % rule.window if rule.function == "increase" else "value"
        gpu_filter = f" AND gpu = {gpu}" if gpu >= 0 else ""
        query = (f"SELECT ts, value FROM {self.database}.metrics_raw WHERE node = '{node}'{gpu_filter} "
                 f"AND metric = '{rule.metric}' AND ts BETWEEN fromUnixTimestamp64Milli({int((ts - 600) * 1000)}) "
                 f"AND fromUnixTimestamp64Milli({int((ts + 60) * 1000)}) ORDER BY ts")
        return Condition(
            alertname=rule.alert, labels=ident, ts=ts, severity=rule.severity, for_s=rule.for_,
            keep_firing_for_s=rule.keep_firing_for, annotations=annotations,
            evidence=[Evidence(metric=rule.metric, value=observed, baseline=rule.threshold,
                               detail=f"{what} {rule.op} {rule.threshold:g}")],
            evidence_query=query, source=f"rule:{rule.alert}", node=node,
        )
