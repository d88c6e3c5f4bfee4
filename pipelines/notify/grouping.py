"""Aggregation groups and the dispatcher that routes alerts into them.

Alertmanager's timing: a new group waits ``group_wait`` before its first
notification (to collect alerts that fire together), then re-evaluates every
``group_interval``; the dedup stage decides whether anything is worth sending,
and re-sends an unchanged firing group after ``repeat_interval``. An alert that
is already older than ``group_wait`` when its group is created goes out at once
(after a restart, nobody should wait again). Resolved alerts leave their group
once the group has been delivered; an empty group ends.

Unlike Alertmanager, a group never lets a newer state of an alert replace a
firing incident that no flush has carried yet (its resolution, or the next
incident of the same fingerprint): a worker catching up on a backlog publishes
minutes of decisions in a burst, and keeping only the newest state lost the
incidents in between (issue 11). Such a change is held until a flush carried
the incident, and the group is flushed again at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from pipelines.notify.alert import Alert
from pipelines.notify.routing import Route
from pipelines.notify.stages import GroupFlush

log = logging.getLogger("gpuwatch.notify.grouping")

FlushFn = Callable[[GroupFlush], Awaitable[bool]]


class AggregationGroup:
    def __init__(self, route: Route, labels: dict[str, str], key: str, flush_fn: FlushFn,
                 on_done: Callable[["AggregationGroup", list[Alert]], None]) -> None:
        self.route = route
        self.labels = labels
        self.key = key
        self.alerts: dict[str, Alert] = {}
        self.has_flushed = False
        #: incident ids of firing alerts a successful flush carried (told, or muted on purpose)
        self._carried: set[str] = set()
        #: changes held back, in arrival order, until the incident they would replace is carried
        self._held: list[Alert] = []
        self._flush_fn = flush_fn
        self._on_done = on_done
        self._wake = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"group {self.key}")

    def insert(self, alert: Alert) -> None:
        if self._held or self._replaces_untold(alert):
            self._held.append(alert)
            if self.has_flushed:
                self._wake.set()
            return
        self.alerts[alert.fingerprint] = alert
        if not self.has_flushed and alert.starts_at + self.route.group_wait < time.time():
            self._wake.set()

    def _replaces_untold(self, alert: Alert) -> bool:
        """Would ``alert`` replace a firing incident no flush has carried? (An update of that same
        incident does not: it is what will be told.)"""
        cur = self.alerts.get(alert.fingerprint)
        return (cur is not None and cur.firing and cur.incident_id not in self._carried
                and not (alert.firing and alert.incident_id == cur.incident_id))

    def _release_held(self) -> None:
        """Apply held changes in order, up to the next one that would replace an untold incident."""
        while self._held and not self._replaces_untold(self._held[0]):
            alert = self._held.pop(0)
            self.alerts[alert.fingerprint] = alert
        if self._held:
            self._wake.set()  # the next incident is waiting for its page: no group_interval

    def flush_now(self) -> None:
        """Skip the wait before the next evaluation (e.g. after a silence or ack changed)."""
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0 or self._wake.is_set():
            self._wake.clear()
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def _run(self) -> None:
        await self._sleep(self.route.group_wait)
        while True:
            try:
                await self._flush()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one group's bug stop the others
                log.exception("flush of group %s failed", self.key)
            if not self.alerts:
                return
            await self._sleep(self.route.group_interval)

    async def _flush(self) -> None:
        snapshot = list(self.alerts.values())
        ok = await self._flush_fn(GroupFlush(key=self.key, labels=self.labels, receiver=self.route.receiver,
                                             repeat_interval=self.route.repeat_interval,
                                             group_interval=self.route.group_interval, alerts=snapshot))
        self.has_flushed = True
        if not ok:
            return
        self._carried = {a.incident_id for a in snapshot if a.firing}
        finished = [a for a in snapshot if not a.firing and self.alerts.get(a.fingerprint) is a]
        for a in finished:
            del self.alerts[a.fingerprint]
        self._release_held()
        self._on_done(self, [a for a in finished if a.fingerprint not in self.alerts])


class Dispatcher:
    """Routes each alert to its groups and tells the store when an alert needs nothing more."""

    def __init__(self, root: Route, flush_fn: FlushFn, on_finished: Callable[[list[str]], None]) -> None:
        self.root = root
        self.flush_fn = flush_fn
        self.on_finished = on_finished
        self.groups: dict[str, AggregationGroup] = {}
        self._refs: dict[str, set[str]] = {}

    def insert(self, alert: Alert) -> None:
        for route in self.root.match(alert.labels):
            key = route.group_key(alert.labels)
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = AggregationGroup(route, route.group_labels(alert.labels), key,
                                                            self.flush_fn, self._group_done)
                group.insert(alert)
                group.start()
            else:
                group.insert(alert)
            self._refs.setdefault(alert.fingerprint, set()).add(key)

    def _group_done(self, group: AggregationGroup, finished: list[Alert]) -> None:
        done = []
        for a in finished:
            refs = self._refs.get(a.fingerprint)
            if refs is not None:
                refs.discard(group.key)
                if not refs:
                    del self._refs[a.fingerprint]
                    done.append(a.fingerprint)
        if not group.alerts and self.groups.get(group.key) is group:
            del self.groups[group.key]
        if done:
            self.on_finished(done)

    def groups_of(self, fingerprint: str) -> list[AggregationGroup]:
        return [self.groups[k] for k in self._refs.get(fingerprint, ()) if k in self.groups]

    def reevaluate(self) -> None:
        """Evaluate every group now: a silence or ack changed what should be sent."""
        for g in self.groups.values():
            if g.has_flushed:
                g.flush_now()

    async def stop(self) -> None:
        tasks = [g.task for g in self.groups.values() if g.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
