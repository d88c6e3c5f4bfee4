"""Tier 1 as steps of :class:`~pipelines.detect.engine.NodeDetectors`: every series of a node scored each tick.

Families scored by robust_zscore share banks (:class:`~pipelines.detect.robust_zscore.RobustZScore`: one numpy
call per bank per tick); error counters are turned into per-second rates and scored by their own detectors
(counter bursts). A node's usual tick (the same GPUs reporting the same metrics in the same order) follows a
cached :class:`_TickPlan`; any other tick takes the general path, with the same outcome.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import numpy as np

from pipelines.detect.evidence import evidence
from pipelines.detect.observation import Observation
from pipelines.detect.robust_zscore import SERIES_PARAMS, RobustZScore
from schemas.alerts import Evidence

log = logging.getLogger("gpuwatch.detect")


def _without_season(shared: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in shared.items() if k not in ("season_s", "season_bins")))


class _TickPlan(NamedTuple):
    """How tier 1 gathers a tick laid out like ``sig`` (GPUs, and each GPU's metric names in order)."""

    sig: tuple
    #: per bank with series: (bank, positions in the tick's flat values, slots (a slice when they are in a row),
    #: keys, groups for the verdicts)
    banks: list
    #: (position, key, family, counter, member) of series scored by other detectors
    slow: list


class Tier1Steps:
    """Mixin: tier 1's setup and per-tick step. State lives on the NodeDetectors instance."""

    # -- tier 1 ----------------------------------------------------------------------------
    def _tier1_setup(self) -> None:
        """Families scored by robust_zscore share banks (one numpy call per bank per tick).

        Families whose detector parameters differ only in having a seasonal profile or not share one bank,
        the others' series marked not ``seasonal``: one call a tick for the usual configuration, not one for
        the seasonal families and one for the rest (issue 10)."""
        self._banks: list[RobustZScore] = []
        bank_of: dict[tuple, int] = {}
        self._others: dict[str, object] = {}
        self._metric_info: dict[str, tuple] = {}  # metric -> (family, bank or -1, series params, counter)
        seasons: dict[tuple, set] = {}  # bank parameters but the season -> the seasons asked for with them
        for fam in self.config.families.values():
            if fam.enabled and fam.detector == RobustZScore.name:
                shared = {k: v for k, v in fam.params.items() if k not in SERIES_PARAMS}
                if shared.get("season_s", 0.0) > 0:
                    seasons.setdefault(_without_season(shared), set()).add(
                        (shared["season_s"], shared.get("season_bins", 24)))
        for name, fam in self.config.families.items():
            if not fam.enabled:
                continue
            if fam.detector == RobustZScore.name:
                shared = {k: v for k, v in fam.params.items() if k not in SERIES_PARAMS}
                series = {k: v for k, v in fam.params.items() if k in SERIES_PARAMS}
                rest = _without_season(shared)
                found = seasons.get(rest, set())
                if len(found) == 1:  # one season among families alike: one bank, series seasonal or not
                    season_s, season_bins = next(iter(found))
                    if shared.get("season_s", 0.0) <= 0:
                        series["seasonal"] = False
                    shared = {**dict(rest), "season_s": season_s, "season_bins": season_bins}
                key = tuple(sorted(shared.items()))
                if key not in bank_of:
                    bank_of[key] = len(self._banks)
                    self._banks.append(RobustZScore(**shared))
                bank = bank_of[key]
            else:
                self._others[name] = fam.build()
                bank, series = -1, {}
            for m in fam.metrics:
                self._metric_info[m] = (name, bank, series, fam.counter)
        self._plan: dict[tuple[int, str], tuple] = {}  # (gpu, metric) -> how it is scored (see _plan_for)

    def _adopt(self, metric: str) -> tuple | None:
        """A metric no family names: scored by the default family if one is configured (with a warning)."""
        fam = self.config.default_family
        rep = self.config.families[fam].metrics[0] if fam is not None else None
        mi = self._metric_info.get(rep) if rep is not None else None
        if not mi or metric.startswith("job_"):
            self._metric_info[metric] = ()  # remembered as unscored: no lookup next tick
            return None
        self._metric_info[metric] = mi
        self.__dict__.setdefault("unknown_metrics", set()).add(metric)
        log.warning("metric %r is in no detection family; scoring it with the %r family", metric, fam)
        return mi

    def _plan_for(self, g: int, m: str) -> tuple:
        """How series (g, m) is scored: (family, bank or -1, slot, counter), or () when it is not scored."""
        mi = self._metric_info.get(m)
        if mi is None:
            mi = self._adopt(m)
        if not mi:
            return ()
        fam, bank, series, counter = mi
        slot = int(self._banks[bank].slots([(g, m)], series)[0]) if bank >= 0 else -1
        return fam, bank, slot, counter

    def _layout(self, g: int, names: tuple[str, ...]) -> tuple[list, list]:
        """For GPU ``g`` reporting ``names`` in this order: per bank (bank, positions, slots, keys) of the plain
        gauges, and (position, key, plan) of the series that need more (counters, other detectors). When a
        counter feeds a bank, every series takes the second path, so a bank's order stays the samples' order."""
        plan = self.__dict__.get("_plan")
        if plan is None:
            plan = self._plan = {}  # derived, not checkpointed: rebuilt from the banks' slots after a restore
        entries = []
        for j, m in enumerate(names):
            p = plan.get((g, m))
            if p is None:
                p = plan[(g, m)] = self._plan_for(g, m)
            if p:
                entries.append((j, (g, m), p, f"{g}/{m}"))  # the series' name among its family's others
        if any(p[3] and p[1] >= 0 for _, _, p, _ in entries):
            return [], entries
        banks: dict[int, tuple[int, list, list, list]] = {}
        slow = []
        for j, key, p, member in entries:
            if p[3] or p[1] < 0:
                slow.append((j, key, p, member))
                continue
            b = banks.setdefault(p[1], (p[1], [], [], []))
            b[1].append(j)
            b[2].append(p[2])
            b[3].append(key)
        return list(banks.values()), slow

    def _gpu_layouts(self, gpus: dict[int, dict[str, float]]) -> dict:
        """(gpu, metric names) -> :meth:`_layout`; derived, not checkpointed (like ``_plan``), and started anew
        when layouts that come and go pile up."""
        layouts = self.__dict__.get("_layouts")
        if layouts is None or len(layouts) > 64 + 4 * len(gpus):
            layouts = self._layouts = {}
        return layouts

    def _tick_plan(self, gpus: dict[int, dict[str, float]]) -> _TickPlan | None:
        """The plan of a tick laid out like the last one (the same GPUs reporting the same metrics in the same
        order: the usual tick), worked out once; None when a counter feeds a bank (the general path)."""
        sig = (tuple(gpus), tuple(map(tuple, gpus.values())))
        plan = self.__dict__.get("_tplan")
        if plan is not None and plan.sig == sig:
            return plan
        layouts = self._gpu_layouts(gpus)
        nb = len(self._banks)
        pos: list[list[int]] = [[] for _ in range(nb)]
        idx: list[list[int]] = [[] for _ in range(nb)]
        keys: list[list[tuple[int, str]]] = [[] for _ in range(nb)]
        slow = []
        at = 0
        for g, names in zip(sig[0], sig[1]):
            lay = layouts.get((g, names))
            if lay is None:
                lay = layouts[(g, names)] = self._layout(g, names)
            for bank, bpos, slots, ks in lay[0]:
                pos[bank] += [at + j for j in bpos]
                idx[bank] += slots
                keys[bank] += ks
            for j, key, p, member in lay[1]:
                if p[1] >= 0:
                    self._tplan = None
                    return None
                slow.append((at + j, key, p[0], p[3], member))
            at += len(names)
        banks = []
        for b in range(nb):
            if not idx[b]:
                continue
            g_of = np.array([k[0] for k in keys[b]])
            starts = np.flatnonzero(np.r_[True, g_of[1:] != g_of[:-1]])
            group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(g_of)]))
            ix = np.array(idx[b], dtype=np.intp)
            if (ix == np.arange(ix[0], ix[0] + len(ix))).all():
                ix = slice(int(ix[0]), int(ix[0]) + len(ix))  # the usual case: views, not copies, of the state
            banks.append((b, np.array(pos[b], dtype=np.intp), ix, keys[b],
                          (starts, group, np.arange(len(g_of)))))
        plan = self._tplan = _TickPlan(sig, banks, slow)
        return plan

    def _tier1(self, ts: float, gpus: dict[int, dict[str, float]], out: Observation) -> None:
        plan = self._tick_plan(gpus)
        if plan is None:
            self._tier1_general(ts, gpus, out)
            return
        flat = [v for metrics in gpus.values() for v in metrics.values()]
        self._rates = {}
        others: dict[str, dict[str, float]] = {}
        for at, key, fam, counter, member in plan.slow:
            v = flat[at]
            if counter:
                v = self._counter_rate(key, v, ts)
                if v is None:
                    continue
            x = others.get(fam)
            if x is None:
                x = others[fam] = {}
            x[member] = v
        self._t1 = []  # this tick's (keys, values, baselines, z), for evidence
        rows = self.config.score_rows
        if plan.banks:
            arr = np.array(flat)
            for b, pos, ix, keys, groups in plan.banks:
                self._score_bank(ts, self._banks[b], ix, keys, arr[pos], rows, out, groups)
        self._tier1_others(ts, others, rows, out)

    def _score_bank(self, ts: float, det: RobustZScore, ix, keys: list, values: np.ndarray, rows: str,
                    out: Observation, groups=None) -> None:
        """Score and learn one bank's series of the tick (positions or a slice ``ix``), then its verdicts."""
        base = det.baseline(ix)
        z = det.step(ix, values, ts)
        thr = det.thresholds(ix)
        anom = det.series_warm(ix) & (z >= thr)
        self._t1.append((keys, values, base, z))
        self._tier1_verdicts(ts, keys, values, base, z, thr, anom, det.name, rows, out, groups)

    def _counter_rate(self, key: tuple[int, str], v: float, ts: float) -> float | None:
        """Counter series ``key``'s per-second rate now that it reads ``v`` (None at its first reading, or one
        not newer than the last), kept in this tick's rates for the early warning."""
        counters = self._counters
        prev = counters.get(key)
        counters[key] = (v, ts)
        if prev is None or ts <= prev[1]:
            return None
        rate = self._rates[key] = max(0.0, (v - prev[0]) / (ts - prev[1]))  # a counter that went down was reset
        return rate

    def _tier1_general(self, ts: float, gpus: dict[int, dict[str, float]], out: Observation) -> None:
        """Tier 1 of any tick (see :meth:`_tick_plan` for the usual one): each GPU's layout, its values gathered
        per bank."""
        layouts = self._gpu_layouts(gpus)
        self._rates = {}
        nb = len(self._banks)
        idx: list[list[int]] = [[] for _ in range(nb)]
        vals: list[list[float]] = [[] for _ in range(nb)]
        keys: list[list[tuple[int, str]]] = [[] for _ in range(nb)]
        others: dict[str, dict[str, float]] = {}
        for g, metrics in gpus.items():
            names = tuple(metrics)
            lay = layouts.get((g, names))
            if lay is None:
                lay = layouts[(g, names)] = self._layout(g, names)
            vl = list(metrics.values())
            for bank, pos, slots, ks in lay[0]:
                idx[bank] += slots
                vals[bank] += [vl[j] for j in pos]
                keys[bank] += ks
            for j, key, (fam, bank, slot, counter), member in lay[1]:
                v = vl[j]
                if counter:
                    v = self._counter_rate(key, v, ts)
                    if v is None:
                        continue
                if bank < 0:
                    x = others.get(fam)
                    if x is None:
                        x = others[fam] = {}
                    x[member] = v
                    continue
                idx[bank].append(slot)
                vals[bank].append(v)
                keys[bank].append(key)
        self._t1 = []  # this tick's (keys, values, baselines, z), for evidence
        rows = self.config.score_rows
        for b, det in enumerate(self._banks):
            if idx[b]:
                self._score_bank(ts, det, np.array(idx[b], dtype=np.intp), keys[b], np.array(vals[b]), rows, out)
        self._tier1_others(ts, others, rows, out)

    def _tier1_others(self, ts: float, others: dict[str, dict[str, float]], rows: str, out: Observation) -> None:
        """Tier-1 families scored by other detectors than robust_zscore (error counters)."""
        for fam, x in others.items():
            det = self._others[fam]
            sc = det.score_then_learn(x, ts)
            if rows != "all" and not any(sc.values()):  # the usual tick: every score 0, nothing to write
                continue
            k = [(int(key.partition("/")[0]), key.partition("/")[2]) for key in x]
            z = np.array([sc.get(key, 0.0) for key in x])
            thr = np.full(len(z), det.threshold)
            self._tier1_verdicts(ts, k, np.array(list(x.values())), np.full(len(z), np.nan), z, thr,
                                 det.warm & (z >= thr), det.name, rows, out)

    def _tier1_verdicts(self, ts, keys, values, base, z, thr, anom, detector, rows, out, groups=None) -> None:
        """Score rows and conditions of one bank's tick. ``groups`` (each GPU's first position in ``keys`` and
        each series' GPU number, when a GPU's series are together) picks each GPU's top with array operations."""
        if rows != "none":
            zl, tl, al = z.tolist(), thr.tolist(), anom.tolist()
            if rows == "all":
                pick = range(len(keys))
            elif groups is not None:  # as below, a GPU's series being together
                starts, group, order = groups
                z2 = np.where(np.isnan(z), -np.inf, z)
                # the first position at its GPU's maximum: positions not at it count as the end
                first = np.minimum.reduceat(np.where(z2 == np.maximum.reduceat(z2, starts)[group], order, len(z)),
                                            starts)
                mask = anom.copy()
                mask[first[z2[first] > 0]] = True
                pick = np.flatnonzero(mask).tolist()
            else:  # each GPU's highest z (the first of equals; NaN never wins), and every anomalous series
                top: dict[int, int] = {}
                best: dict[int, float] = {}
                for i, k in enumerate(keys):
                    zi = zl[i]
                    if zi != zi:
                        zi = -math.inf
                    g = k[0]
                    if g not in top or zi > best[g]:
                        top[g], best[g] = i, zi
                pick = sorted({i for i in top.values() if zl[i] > 0}.union(i for i, a in enumerate(al) if a))
            for i in pick:
                out.scores.append((ts, self.node, keys[i][0], detector, keys[i][1], zl[i], tl[i], int(al[i])))
        hits = np.flatnonzero(anom).tolist()
        if not hits:
            return
        fams = self.config.families
        groups: dict[tuple[int, str], list[int]] = {}
        for i in hits:
            fam = self._metric_info[keys[i][1]][0]
            if fams[fam].alert is not None:
                groups.setdefault((keys[i][0], fam), []).append(i)
        for (g, fam), ids in groups.items():
            ids.sort(key=lambda i: -z[i])
            counter = fams[fam].counter
            ev = [evidence(keys[i][1], values[i], base[i], z[i],
                           f"{'per-second rate; ' if counter else ''}z-score vs EWMA baseline") for i in ids]
            worst = keys[ids[0]][1]
            ann = {"summary": f"{worst}{' rate' if counter else ''} on GPU {g} of {self.node} is "
                              f"{z[ids[0]]:.0f} scales above normal", "family": fam}
            out.conditions.append(self._condition(fams[fam].alert, {"node": self.node, "gpu": str(g)}, ts,
                                                  detector, ev, [g], [keys[i][1] for i in ids], ann))

    def _top_series(self, gpu: int, n: int = 3) -> list[Evidence]:
        """The tier-1 series of ``gpu`` furthest from their baselines this tick, as evidence."""
        found = []
        for fkeys, values, base, z in getattr(self, "_t1", []):
            for i, (g, m) in enumerate(fkeys):
                if g == gpu and z[i] > 0:
                    found.append((float(z[i]), m, values[i], base[i]))
        found.sort(reverse=True)
        return [evidence(m, v, b, zi, "z-score vs EWMA baseline") for zi, m, v, b in found[:n]]
