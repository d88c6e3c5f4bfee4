"""Tier 4: training-job health from the job SDK's metrics.

Features, per job (gpu -1 samples): ``job_loss``, ``job_grad_norm``,
``job_tokens_per_s``, ``job_step`` and the count of non-finite losses. The
wire refuses NaN, so the job-SDK collector counts NaN/Inf losses in
``job_loss_nonfinite_total``; an increase of that counter (or a
``job_loss_nonfinite`` flag > 0, or a loss of at least ``nonfinite_at``) is a
non-finite loss.

Each check has its own subject and is scaled so that 1.0 is its threshold:

=====================  ==========================================================
``loss_nonfinite``     loss NaN/Inf (counter rose, flag set, or loss >= ``nonfinite_at``)
``loss_spike``         log-loss z-score against its EWMA level >= ``spike_z``
``loss_divergence``    short-term smoothed loss ``1 + divergence_ratio`` x its long-term
                       level: a sustained climb, not the wander of a noisy loss
``loss_trend``         least-squares slope of log-loss over the last ``trend_window`` steps
                       above ``trend_z`` standard errors and ``min_trend`` per step: a loss
                       that keeps climbing, caught long before it has doubled
``grad_norm_explosion`` grad norm ``explode_factor`` x its usual level or more
``throughput_drop``    tokens/s ``drop_frac`` below its usual level
``loss_plateau``       smoothed loss improved less than ``plateau_min_improvement``
                       (relative) over about ``plateau_window`` steps
=====================  ==========================================================

A step counter that goes backwards means a new run: the detector starts over
(and warms up again), so a restarted job's loss going back up is not a spike.

>>> d = JobHealth(warmup=10)
>>> for s in range(50):
...     d.learn_one({"job_step": s, "job_loss": 3.0 - 0.01 * s, "job_grad_norm": 1.0, "job_tokens_per_s": 1e4})
>>> s = d.score_many({"job_step": 50, "job_loss": 9.0, "job_grad_norm": 12.0, "job_tokens_per_s": 1e4})
>>> s["loss_spike"] > 1, s["grad_norm_explosion"] > 1, s["throughput_drop"] < 1
(True, True, True)
"""

from __future__ import annotations

import math

from pipelines.detect.base import Detector, Features, register

CHECKS = ("loss_nonfinite", "loss_spike", "loss_divergence", "loss_trend", "grad_norm_explosion",
          "throughput_drop", "loss_plateau")


class _Level:
    """A robust EWMA level and scale for one scalar, learning only what was not flagged."""

    __slots__ = ("level", "scale", "count", "run")

    def __init__(self) -> None:
        self.level, self.scale, self.count, self.run = 0.0, 0.0, 0, 0

    def learn(self, v: float, alpha: float, flagged: bool, adapt_after: int) -> None:
        self.run = self.run + 1 if flagged else 0
        if flagged and self.run < adapt_after:
            return
        if self.count == 0:
            self.level = v
        else:
            r = v - self.level
            self.level += alpha * r
            self.scale += alpha * (1.2533 * abs(r) - self.scale)
        self.count += 1

    def __getstate__(self):
        return (self.level, self.scale, self.count, self.run)

    def __setstate__(self, s):
        self.level, self.scale, self.count, self.run = s


def _num(x: Features, k: str) -> float | None:
    v = x.get(k)
    return float(v) if isinstance(v, (int, float)) else None


@register
class JobHealth(Detector):
    """Loss spike, NaN/Inf loss, divergence, plateau, throughput drop, grad-norm explosion."""

    name = "job_health"

    def __init__(self, alpha: float = 0.05, spike_z: float = 8.0, min_log_scale: float = 0.01,
                 divergence_ratio: float = 1.0, explode_factor: float = 5.0, drop_frac: float = 0.25,
                 plateau_window: int = 1800, plateau_min_improvement: float = 0.002,
                 nonfinite_at: float = 1e30, warmup: int = 30, adapt_after: int = 300, trend_window: int = 30,
                 trend_z: float = 8.0, min_trend: float = 0.004, seed: int = 0) -> None:
        self.alpha = alpha
        self.spike_z = spike_z
        self.min_log_scale = min_log_scale
        self.divergence_ratio = divergence_ratio
        self.explode_factor = explode_factor
        self.drop_frac = drop_frac
        self.plateau_window = plateau_window
        self.plateau_min_improvement = plateau_min_improvement
        self.nonfinite_at = nonfinite_at
        self.warmup = warmup
        self.adapt_after = adapt_after
        self.trend_window = trend_window
        self.trend_z = trend_z
        self.min_trend = min_trend
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        self._loss = _Level()      # of log(loss)
        self._grad = _Level()      # of log(grad norm)
        self._tokens = _Level()    # of tokens/s
        self._trend_fast: float | None = None  # log-loss EWMAs, short and long memory, for divergence
        self._trend_slow: float | None = None
        self._slow = self._fast = None  # plateau EWMAs of log-loss
        self._n = 0
        self._recent: list[float] = []   # last trend_window log-losses
        self._last_step: float | None = None
        # the collector's counter is per job label, so it survives a restart of the run
        self._nonfinite_total: float | None = getattr(self, "_nonfinite_total", None)

    # -- scoring -------------------------------------------------------------------------
    def _finite_loss(self, x: Features) -> float | None:
        loss = _num(x, "job_loss")
        if loss is None or not math.isfinite(loss) or abs(loss) >= self.nonfinite_at:
            return None
        return max(loss, 1e-12)

    def score_many(self, x: Features, t: float | None = None) -> dict[str, float]:
        out = self._score(x)
        self._memo = (dict(x), dict(out))
        return out

    def _score(self, x: Features) -> dict[str, float]:
        out = dict.fromkeys(CHECKS, 0.0)
        loss = _num(x, "job_loss")
        total = _num(x, "job_loss_nonfinite_total")
        rose = total is not None and total > (self._nonfinite_total if self._nonfinite_total is not None else 0.0)
        if rose or (_num(x, "job_loss_nonfinite") or 0.0) > 0 or (
                loss is not None and (not math.isfinite(loss) or abs(loss) >= self.nonfinite_at)):
            out["loss_nonfinite"] = 1000.0
        if self._restarted(x):
            return out
        fl = self._finite_loss(x)
        if fl is not None and self._loss.count >= self.warmup:
            lg = math.log(fl)
            scale = max(self._loss.scale, self.min_log_scale)
            out["loss_spike"] = max(0.0, lg - self._loss.level) / scale / self.spike_z
            if self._trend_slow is not None:
                fast = self._trend_fast + 0.3 * (lg - self._trend_fast)
                out["loss_divergence"] = max(0.0, fast - self._trend_slow) / math.log1p(self.divergence_ratio)
            out["loss_trend"] = self._trend_score(lg)
            if self._n >= self.plateau_window and self._slow is not None:
                improvement = (self._slow - self._fast) / max(abs(self._slow), 1e-9)
                floor = self.plateau_min_improvement / 10
                if improvement > -self.plateau_min_improvement:
                    out["loss_plateau"] = self.plateau_min_improvement / max(improvement, floor)
        g = _num(x, "job_grad_norm")
        if g is not None and math.isfinite(g) and g > 0 and self._grad.count >= self.warmup:
            out["grad_norm_explosion"] = max(0.0, math.log(g) - self._grad.level) / math.log(self.explode_factor)
        tok = _num(x, "job_tokens_per_s")
        if tok is not None and math.isfinite(tok) and self._tokens.count >= self.warmup and self._tokens.level > 0:
            out["throughput_drop"] = max(0.0, 1 - tok / self._tokens.level) / self.drop_frac
        return out

    def _trend_score(self, lg: float) -> float:
        """Slope of log-loss over the window (this value included), in units of its threshold."""
        ys = self._recent[-(self.trend_window - 1):] + [lg]
        n = len(ys)
        if n < self.trend_window:
            return 0.0
        xm = (n - 1) / 2
        ym = sum(ys) / n
        sxx = n * (n * n - 1) / 12
        slope = sum((i - xm) * (y - ym) for i, y in enumerate(ys)) / sxx
        resid = sum((y - ym - slope * (i - xm)) ** 2 for i, y in enumerate(ys)) / (n - 2)
        se = math.sqrt(max(resid, 0.0) / sxx)
        return max(0.0, slope) / max(self.trend_z * se, self.min_trend)

    def _restarted(self, x: Features) -> bool:
        step = _num(x, "job_step")
        return step is not None and self._last_step is not None and step < self._last_step

    # -- learning ------------------------------------------------------------------------
    def learn_one(self, x: Features, t: float | None = None) -> None:
        # a tick is scored, then learned, with the same readings and nothing learned in between: the
        # scores are the ones just given (the loss trend's sums twice a tick, issue 10), unless a restart
        # resets the state first
        memo, self._memo = self.__dict__.get("_memo"), None
        if self._restarted(x):
            self._reset()
            memo = None
        scores = memo[1] if memo is not None and memo[0] == x else self._score(x)
        step = _num(x, "job_step")
        if step is not None:
            self._last_step = step
        total = _num(x, "job_loss_nonfinite_total")
        if total is not None:
            self._nonfinite_total = total
        a, adapt = self.alpha, self.adapt_after
        fl = self._finite_loss(x)
        if fl is not None:
            lg = math.log(fl)
            bad = max(scores["loss_spike"], scores["loss_divergence"], scores["loss_trend"]) >= 1.0
            self._recent.append(lg)
            del self._recent[:-self.trend_window]
            self._loss.learn(lg, a, bad, adapt)
            self._trend_fast = lg if self._trend_fast is None else self._trend_fast + 0.3 * (lg - self._trend_fast)
            if self._trend_slow is None or not bad:
                self._trend_slow = lg if self._trend_slow is None else self._trend_slow + 0.01 * (lg - self._trend_slow)
            if not bad:
                wa = 2.0 / self.plateau_window
                self._slow = lg if self._slow is None else self._slow + wa * (lg - self._slow)
                self._fast = lg if self._fast is None else self._fast + 10 * wa * (lg - self._fast)
            self._n += 1
        g = _num(x, "job_grad_norm")
        if g is not None and math.isfinite(g) and g > 0:
            self._grad.learn(math.log(g), a, scores["grad_norm_explosion"] >= 1.0, adapt)
        tok = _num(x, "job_tokens_per_s")
        if tok is not None and math.isfinite(tok):
            self._tokens.learn(tok, a, scores["throughput_drop"] >= 1.0, adapt)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_memo"}  # a tick's answer, not state

    def baseline(self) -> dict[str, float]:
        """Usual loss, grad norm and tokens/s: what the checks compare against."""
        return {"job_loss": math.exp(self._loss.level) if self._loss.count else math.nan,
                "job_grad_norm": math.exp(self._grad.level) if self._grad.count else math.nan,
                "job_tokens_per_s": self._tokens.level if self._tokens.count else math.nan}

    @property
    def threshold(self) -> float:
        return 1.0

    @property
    def warm(self) -> bool:
        return self._loss.count >= self.warmup or self._tokens.count >= self.warmup
