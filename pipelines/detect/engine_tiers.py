"""Tiers 2-5 and 7 as steps of :class:`~pipelines.detect.engine.NodeDetectors`.

Each step reads one tick of the node's samples (``gpus``: gpu -> metric -> value;
``-1`` holds node-level samples), scores and learns, and appends score rows and
conditions to the tick's :class:`Observation`. A step reports conditions only
from detectors that are warm.
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timezone

from pipelines.detect.evidence import evidence
from pipelines.detect.observation import JobSummary, Observation

Gpus = dict[int, dict[str, float]]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fmt_s(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


class NodeTierSteps:
    """Mixin: the per-tick steps after tier 1. State lives on the NodeDetectors instance."""

    # -- tier 3: GPUs of this node against each other ---------------------------------------------
    def _peers(self, ts: float, gpus: Gpus, out: Observation) -> None:
        cfg = self.config
        det = self._hotspot
        hot: set[str] = set()
        if det is not None:
            m = cfg.hotspot.metric
            x = {str(g): v[m] for g, v in gpus.items() if g >= 0 and m in v}
            if cfg.hotspot.adjust_for:
                x = self._explained_away(x, gpus, m, cfg.hotspot.adjust_for)
            scores = det.score_many(x, ts)
            warm = det.warm
            # the baseline is evidence only: worked out (before learning) only on a tick that reports
            base = det.baseline(x) if warm and any(z >= det.threshold for z in scores.values()) else {}
            det.learn_one(x, ts)
            thr = det.threshold
            for member, z in scores.items():
                g = int(member)
                self._row(out, ts, g, "peer_hotspot", m, z, thr, warm)
                if warm and z >= thr:
                    hot.add(member)
                    ev = [evidence(m, x[member], base.get(member), z,
                                   f"peer baseline: median of {len(x)} GPUs on the node plus this GPU's usual offset")]
                    ann = {"summary": f"GPU {g} of {self.node} runs {x[member] - base[member]:.1f} above its "
                                      f"peers' {m}"}
                    out.conditions.append(self._condition(cfg.hotspot.alert, {"node": self.node, "gpu": member},
                                                          ts, det.name, ev + self._top_series(g), None, [m], ann))
        det = self._straggler
        if det is not None:
            metrics = list(det._groups)
            sync = getattr(self, "_sync", None)
            # the features split per metric as Straggler.split_features would, without "gpu/metric" keys
            by_metric: dict[str, dict[str, float]] = {}
            members = set()  # built in the order the keys were, so it iterates alike
            for g, v in gpus.items():
                if g >= 0 and (sync is None or g in sync):
                    member = str(g)
                    for m in metrics:
                        if m in v:
                            by_metric.setdefault(m, {})[member] = v[m]
                            members.add(member)
            per_metric = det.per_metric_split(by_metric)
            warm = det.warm
            thr = det.threshold
            reports = warm and any(z >= thr for zs in per_metric.values() for z in zs.values())
            x = {f"{k}/{m}": v for m, vals in by_metric.items() for k, v in vals.items()} if reports else {}
            # which GPU is stalled and the baselines serve a report only: worked out (before learning) then
            stalled = set(det.stalled(x)) if reports else set()
            base = det.baseline(x) if reports else {}
            det.learn_split(by_metric)
            n_peers = len(members)
            for member in members:
                subj = {m: per_metric[m].get(member, 0.0) for m in metrics}
                g = int(member)
                self._rows(out, ts, g, det.name, subj, thr, warm)
                worst = max(subj.values())
                if not warm or worst < thr:
                    continue
                if member in hot or gpus[g].get("throttle_thermal", 0.0) > 0:
                    continue  # slow because hot: the thermal alert names the cause
                is_stalled = member in stalled
                spec = cfg.straggler.stalled_alert if is_stalled else cfg.straggler.straggler_alert
                ev = [evidence(m, x.get(f"{member}/{m}"), base.get(f"{member}/{m}"), subj[m],
                               f"peer baseline: median of {n_peers} GPUs on the node plus this GPU's usual offset")
                      for m in sorted(metrics, key=lambda m: -subj[m])]
                what = "at ~0% utilisation while its peers are busy" if is_stalled else "far slower than its busy peers"
                ann = {"summary": f"GPU {g} of {self.node} is {what}"}
                out.conditions.append(self._condition(spec, {"node": self.node, "gpu": member}, ts, det.name,
                                                      ev + self._top_series(g), None, metrics, ann))

    def _explained_away(self, x: dict[str, float], gpus: Gpus, m: str, driver: str) -> dict[str, float]:
        """``m`` less what ``driver`` explains: a linear fit over the node's GPUs and time (exponentially
        weighted), against the driver smoothed with a first-order lag (temperature follows power in seconds)."""
        st = self.__dict__.setdefault("_fit", {"lag": {}, "n": 0.0, "mx": 0.0, "my": 0.0, "vxx": 0.0, "vxy": 0.0})
        lag = st["lag"]
        n, mx, my, vxx, vxy = st["n"], st["mx"], st["my"], st["vxx"], st["vxy"]  # the fit, in locals for the loop
        out = {}
        for k, y in x.items():
            v = gpus[int(k)].get(driver)
            if v is None or v != v:
                out[k] = y
                continue
            last = lag.get(k, v)
            d = last + 0.25 * (v - last)
            lag[k] = d
            a = max(0.002, 1.0 / (n + 1.0))
            n += 1.0
            dx, dy = d - mx, y - my
            mx += a * dx
            my += a * dy
            vxx += a * (dx * (d - mx) - vxx)
            vxy += a * (dx * (y - my) - vxy)
            out[k] = (y, d)
        st.update(n=n, mx=mx, my=my, vxx=vxx, vxy=vxy)
        slope = vxy / vxx if vxx > 1e-9 else 0.0
        slope = min(max(slope, 0.0), 1.0)
        drivers = sorted(v[1] for v in out.values() if isinstance(v, tuple))
        if not drivers:
            return x
        mid = drivers[len(drivers) // 2]  # only the driver's deviation from the peers' is taken out, so the
        # group's level (what the regime-change gate watches) stays the metric's own
        return {k: (v[0] - slope * (v[1] - mid) if isinstance(v, tuple) else v) for k, v in out.items()}

    # -- tier 4: job health ---------------------------------------------------------------------
    def _job_health(self, ts: float, jobs: dict[str, dict[str, float]], out: Observation) -> None:
        cfg = self.config.job_health
        if cfg is None or not cfg.enabled:
            return
        for job, x in jobs.items():
            rec = self._jobs.get(job)
            if rec is None:
                rec = self._jobs[job] = [cfg.build(), ts]
            det, rec[1] = rec[0], ts
            scores = det.score_many(x, ts)
            warm = det.warm
            base = det.baseline()
            det.learn_one(x, ts)
            self._rows(out, ts, -1, det.name, scores, det.threshold, warm)
            firing: dict[str, list[str]] = {}
            for check, s in scores.items():
                spec = cfg.alerts.get(check)
                if spec is not None and s >= det.threshold and (warm or check == "loss_nonfinite"):
                    firing.setdefault(spec.alertname, []).append(check)
            for checks in firing.values():
                spec = cfg.alerts[checks[0]]
                checks.sort(key=lambda c: -scores[c])
                metric_of = {"throughput_drop": "job_tokens_per_s", "grad_norm_explosion": "job_grad_norm"}
                ev = [evidence(metric_of.get(c, "job_loss"), x.get(metric_of.get(c, "job_loss")),
                               base.get(metric_of.get(c, "job_loss")), scores[c], f"check {c} (1.0 = threshold)")
                      for c in checks]
                severity = max((cfg.alerts[c].severity for c in checks),
                               key=["info", "warning", "critical"].index)
                ann = {"summary": f"job {job} on {self.node}: {', '.join(c.replace('_', ' ') for c in checks)}",
                       "job": job}
                out.conditions.append(self._condition(spec, {"node": self.node, "job": job}, ts, det.name, ev,
                                                      [-1], sorted(x), ann, severity=severity))
        for job, rec in list(self._jobs.items()):
            if ts - rec[1] > cfg.forget_after_s:
                del self._jobs[job]

    # -- tier 5: time to exhaustion --------------------------------------------------------------
    def _exhaustion(self, ts: float, gpus: Gpus, out: Observation) -> None:
        cfg = self.config.exhaustion
        if cfg is None or not cfg.enabled:
            return
        for res in cfg.resources:
            bound_key, bound_metric = ("limit", res.limit) if res.limit else ("free", res.free)
            for g, v in gpus.items():
                if res.used not in v or bound_metric not in v:
                    continue
                x = {"used": v[res.used], bound_key: v[bound_metric]}
                det = self._exhaust.get((res.name, g))
                if det is None:
                    det = self._exhaust[(res.name, g)] = cfg.build()
                s = det.learn_then_score(x, ts)
                warm, thr = det.warm, det.threshold
                self._row(out, ts, g, det.name, res.name, s, thr, warm)
                if not (warm and s >= thr):
                    continue
                tte = det.time_to_exhaustion()
                tte = 0.0 if not math.isfinite(tte) else tte
                at = ts + tte
                limit = x.get("limit", x["used"] + x.get("free", 0.0))
                where = f"GPU {g} of {self.node}" if g >= 0 else self.node
                ev = [evidence(res.used, x["used"], limit * det.full_at, s,
                               f"{(det.fraction() or 0):.1%} used; forecast full in {_fmt_s(tte)}, at {_iso(at)}")]
                ann = {"summary": f"{res.name} on {where} forecast full in {_fmt_s(tte)} (at {_iso(at)})",
                       "time_to_exhaustion_s": f"{tte:.0f}", "exhaustion_at": _iso(at)}
                labels = {"node": self.node, "resource": res.name, **({"gpu": str(g)} if g >= 0 else {})}
                sev = "critical" if tte < res.critical_within_s else None
                out.conditions.append(self._condition(res.alert, labels, ts, det.name, ev,
                                                      [g], [res.used, bound_metric], ann, severity=sev))

    # -- tier 2: each GPU's vector ---------------------------------------------------------------
    def _multivariate(self, ts: float, gpus: Gpus, out: Observation) -> None:
        cfg = self.config.multivariate
        if cfg is None or not cfg.enabled:
            return
        if self._ticks % cfg.every_n == 0:
            for g, v in gpus.items():
                if g < 0:
                    continue
                x = {m: v[m] for m in cfg.metrics if m in v}
                if not x:
                    continue
                det = self._multi.get(g)
                if det is None:
                    det = self._multi[g] = cfg.build()
                warm = det.warm
                score, flagged = det.observe(x)
                top = det.contributions(x)[: cfg.evidence_top] if flagged else []
                self._multi_verdict[g] = (score, det.threshold, warm and flagged, top)
                self._rows(out, ts, g, det.name, {"vector": score}, det.threshold, warm)
        if cfg.alert is None:
            return
        named = {c.labels.get("gpu") for c in out.conditions}  # a specific tier already names the fault
        for g, (score, thr, flagged, top) in self._multi_verdict.items():
            if flagged and str(g) not in named and g in gpus:
                ev = [evidence(m, val, b, z, "z vs this GPU's usual value") for m, val, b, z in top]
                ann = {"summary": f"GPU {g} of {self.node} behaves unlike its usual self "
                                  f"({', '.join(m for m, *_ in top[:3])})"}
                out.conditions.append(self._condition(cfg.alert, {"node": self.node, "gpu": str(g)}, ts,
                                                      "gpu_multivariate", ev, [g], [m for m, *_ in top], ann))

    # -- early warning: error signals rising before a fatal event ---------------------------------
    _TREND_RATES = {"ecc_sbe_volatile_total": "ecc_sbe_rate", "pcie_replay_total": "pcie_replay_rate",
                    "nvlink_crc_errors_total": "nvlink_crc_rate"}
    _TREND_GAUGES = ("remapped_rows_pending", "pcie_link_width", "pcie_link_gen", "throttle_hw_slowdown",
                     "gpu_util_pct")

    def _error_trend(self, ts: float, gpus: Gpus, out: Observation) -> None:
        cfg = self.config.error_trend
        if cfg is None or not cfg.enabled:
            return
        trends = self.__dict__.setdefault("_trend", {})
        rates = getattr(self, "_rates", {})
        for g, v in gpus.items():
            if g < 0:
                continue
            x = {name: rates[(g, m)] for m, name in self._TREND_RATES.items() if (g, m) in rates}
            x.update((k, v[k]) for k in self._TREND_GAUGES if k in v)
            if not x:
                continue
            det = trends.get(g)
            if det is None:
                det = trends[g] = cfg.build()
            warm = det.warm
            scores = det.score_then_learn(x, ts)
            scores.pop("gpu_util_pct", None)
            self._rows(out, ts, g, det.name, scores, det.threshold, warm)
            if not warm:
                continue
            firing = sorted((k for k, s in scores.items() if s >= det.threshold), key=lambda k: -scores[k])
            if not firing:
                continue
            ev = [evidence(k, x.get(k), None, scores[k], "1.0 = threshold; counters as events over "
                           f"{det.window_s:.0f} s against this GPU's usual rate") for k in firing]
            ann = {"summary": f"GPU {g} of {self.node}: {', '.join(k.replace('_', ' ') for k in firing)} rising "
                              "(early warning of a failing GPU)"}
            out.conditions.append(self._condition(cfg.alert, {"node": self.node, "gpu": str(g)}, ts, det.name, ev,
                                                  [g], list(self._TREND_RATES) + list(self._TREND_GAUGES), ann))

    # -- tier 7: a GPU that stops reporting while its node still does ------------------------------
    def _absence(self, ts: float, gpus: Gpus, out: Observation) -> None:
        det = self._gpu_absence
        if det is None:
            return
        present = {str(g): 1.0 for g in gpus if g >= 0}
        scores = det.score_many(present, ts)
        det.learn_one(present, ts)
        for member, s in scores.items():
            if s <= 0:
                continue
            g = int(member)
            self._rows(out, ts, g, det.name, {"silence": s}, det.threshold, True)
            if s >= det.threshold:
                last = det.last_seen(member)
                ev = [evidence("samples", None, None, s,
                               f"no samples for {ts - last:.0f} s (last at {_iso(last)}) while the node reports")]
                ann = {"summary": f"GPU {g} of {self.node} stopped reporting (fell off the bus?) "
                                  f"{ts - last:.0f} s ago", "last_seen": _iso(last)}
                out.conditions.append(self._condition(self.config.gpu_absence.alert,
                                                      {"node": self.node, "gpu": member}, ts, det.name, ev,
                                                      [g], [], ann))

    # -- per-job node summaries for JobPeers ---------------------------------------------------
    def _summaries(self, ts: float, gpus: Gpus, gpu_job: dict[int, str],
                   jobs: dict[str, dict[str, float]], out: Observation) -> None:
        by_job: dict[str, list[int]] = {}
        for g, job in gpu_job.items():
            by_job.setdefault(job, []).append(g)
        for job in set(by_job) | set(jobs):
            values = {k: v for k, v in jobs.get(job, {}).items()
                      if k in ("job_tokens_per_s", "job_step") and math.isfinite(v)}
            for m in ("gpu_util_pct", "sm_clock_mhz"):
                vals = [gpus[g][m] for g in by_job.get(job, []) if m in gpus[g]]
                if vals:
                    values[m] = statistics.fmean(vals)
            if job and values:
                out.job_summaries.append(JobSummary(job, self.node, ts, values))
