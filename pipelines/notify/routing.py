"""The routing tree: which receivers an alert goes to, and with which grouping.

Alertmanager's semantics: an alert descends into the first child route whose
matchers all match; with ``continue: true`` it also tries the following
siblings. A route whose children all miss handles the alert itself. Children
inherit ``receiver``, ``group_by`` and the timings they do not set.

>>> from pipelines.notify.config import parse_config
>>> cfg = parse_config({"route": {"receiver": "all", "group_by": ["node"], "routes": [
...     {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True},
...     {"matchers": ['team=~"ml|infra"'], "receiver": "team"}]},
...     "receivers": [{"name": "all"}, {"name": "pager"}, {"name": "team"}]})
>>> root = build_routes(cfg)
>>> [r.receiver for r in root.match({"severity": "critical", "team": "ml"})]
['pager', 'team']
>>> [r.receiver for r in root.match({"severity": "warning"})]
['all']
>>> root.match({"severity": "critical", "node": "n1"})[0].group_key({"severity": "critical", "node": "n1"})
'{}/{severity="critical"}/0:{node="n1"}'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.notify.config import NotifyConfig, RouteConfig
from pipelines.notify.matchers import Matcher, matches_all


def format_labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


@dataclass
class Route:
    key: str
    matchers: list[Matcher]
    receiver: str
    group_by: tuple[str, ...]
    group_by_all: bool
    group_wait: float
    group_interval: float
    repeat_interval: float
    continue_: bool = False
    children: list["Route"] = field(default_factory=list)

    def match(self, labels: dict[str, str]) -> list["Route"]:
        """The routes that handle an alert with these labels (empty if this route misses)."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.children:
            hits = child.match(labels)
            found.extend(hits)
            if hits and not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: dict[str, str]) -> dict[str, str]:
        if self.group_by_all:
            return dict(labels)
        return {k: labels[k] for k in self.group_by if k in labels}

    def group_key(self, labels: dict[str, str]) -> str:
        return f"{self.key}:{format_labels(self.group_labels(labels))}"

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


def build_routes(config: NotifyConfig) -> Route:
    g = config.global_

    def build(rc: RouteConfig, parent: Route | None, index: int) -> Route:
        matchers = rc.all_matchers()
        ms = "{" + ",".join(str(m) for m in matchers) + "}"
        key = "{}" if parent is None else f"{parent.key}/{ms}/{index}"
        group_by = rc.group_by if rc.group_by is not None else (
            list(parent.group_by) + (["..."] if parent.group_by_all else []) if parent else [])
        route = Route(
            key=key, matchers=matchers,
            receiver=rc.receiver or (parent.receiver if parent else ""),
            group_by=tuple(sorted(x for x in group_by if x != "...")),
            group_by_all="..." in group_by,
            group_wait=rc.group_wait if rc.group_wait is not None else (parent.group_wait if parent else g.group_wait),
            group_interval=rc.group_interval if rc.group_interval is not None else (
                parent.group_interval if parent else g.group_interval),
            repeat_interval=rc.repeat_interval if rc.repeat_interval is not None else (
                parent.repeat_interval if parent else g.repeat_interval),
            continue_=rc.continue_)
        route.children = [build(c, route, i) for i, c in enumerate(rc.routes)]
        return route

    return build(config.route, None, 0)
