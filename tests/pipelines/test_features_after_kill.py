"""Features exactly once: a SIGKILL after back-to-back agent runs must not count a sample twice.

Issue 9, finding 5: three runs back to back, the pipeline SIGKILLed 2 s after the last, restarted;
windows came back with one more sample than raw holds (the same sample counted twice).
Back-to-back simulated runs overlap in event time, so samples of a later run that fall in a window
an earlier run already closed are *late* (stored raw, counted in gpuwatch_late_samples_total, not
in features): a window may hold fewer samples than raw, never more.
"""

from __future__ import annotations

import time

import pytest

from tests.stack import wait_for

pytestmark = pytest.mark.integration

OVERCOUNTED_WINDOWS = """
SELECT r.node AS node, r.gpu AS gpu, r.metric AS metric, r.w AS w, r.n AS raw, f.count AS features
FROM (SELECT node, gpu, metric, toStartOfMinute(ts) AS w, count() AS n FROM gpuwatch.metrics_raw
      GROUP BY node, gpu, metric, w) AS r
INNER JOIN (SELECT node, gpu, metric, window_start AS w, count FROM gpuwatch.features_1m FINAL) AS f
  USING (node, gpu, metric, w)
WHERE f.count > r.n
ORDER BY node, gpu, metric, w
"""


def test_no_window_counts_a_sample_twice_after_back_to_back_runs_and_a_sigkill(stack):
    first = stack.start_pipeline()
    total = sum(stack.simulate(4, 4, 60)["samples_published"] for _ in range(3))
    time.sleep(2)
    first.kill()
    stack.start_pipeline(GPUWATCH_WINDOW_IDLE_CLOSE_S="2")
    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") >= total, 120, what=f"{total} rows")
    # every open window is closed on idle and stored
    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.features_1m FINAL WHERE window_start >= "
                                  "(SELECT toStartOfMinute(max(ts)) FROM gpuwatch.metrics_raw)") > 0, 60,
             what="the last windows stored")
    time.sleep(3)
    assert stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") == total
    assert stack.query(OVERCOUNTED_WINDOWS) == []
