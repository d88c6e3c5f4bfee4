"""Per-row verdicts for offline scoring: one per anomaly episode, rationed by a false-alert budget.

A detector flags every point it finds anomalous; a person (or a benchmark's
scorer) wants to hear once per event. :class:`EpisodeVerdicts` turns a stream of
(score, anomalous) rows per series into verdicts the way the pipeline turns
conditions into one alert per incident: a verdict on the first anomalous row of
an episode, none while it lasts, and none again within ``refractory`` rows of the
last one, which bounds a series to one verdict per ``refractory`` rows whatever
the data do (the explicit false-alert budget).

>>> v = EpisodeVerdicts(refractory=5)
>>> [v.step("s", a) for a in (0, 1, 1, 0, 1, 0, 0, 0, 0, 1)]
[0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
"""

from __future__ import annotations


class EpisodeVerdicts:
    """Verdict per row and series: 1 at the start of an anomaly episode, at most once per ``refractory`` rows."""

    def __init__(self, refractory: int = 150) -> None:
        self.refractory = refractory
        self._state: dict[object, list] = {}  # series -> [row index, last verdict row, previous anomalous]

    def step(self, series: object, anomalous: bool) -> int:
        st = self._state.get(series)
        if st is None:
            st = self._state[series] = [0, -10**9, False]
        i = st[0]
        verdict = int(bool(anomalous) and not st[2] and i - st[1] >= self.refractory)
        if verdict:
            st[1] = i
        st[0] = i + 1
        st[2] = bool(anomalous)
        return verdict
