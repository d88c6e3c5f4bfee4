"""Detection: online anomaly detectors over GPU-cluster metrics, usable with or without the pipeline.

Every detector follows one contract (:class:`~pipelines.detect.base.Detector`:
``learn_one``/``score_one``, higher = more anomalous) and is registered by name:

- tier 1 ``robust_zscore`` - vectorised EWMA z-scores for every series;
  ``counter_burst`` - Poisson tail of error-counter events in a window
- tier 2 ``gpu_multivariate`` - River HalfSpaceTrees/OneClassSVM per GPU
- tier 3 ``peer_group``, ``straggler`` - members against their peers
- tier 4 ``job_health`` - loss, grad norm and throughput of training jobs
- tier 5 ``exhaustion`` - time to exhaustion of GPU memory and disk
- early warning ``error_trend`` - error counters rising, remaps pending, links downgraded
- tier 7 ``absence`` - members that stop reporting

:class:`NodeDetectors` runs them all for one node (what the pipeline calls);
:class:`JobPeers` compares the nodes of a job; :class:`NodeAbsence` notices silent nodes.
"""

from pipelines.detect.base import Detector, make_detector, register, registered
from pipelines.detect.absence import Absence
from pipelines.detect.counter_burst import CounterBurst
from pipelines.detect.error_trend import ErrorTrend
from pipelines.detect.exhaustion import Exhaustion
from pipelines.detect.gpu_multivariate import GpuMultivariate
from pipelines.detect.job_health import JobHealth
from pipelines.detect.peer_group import PeerGroup
from pipelines.detect.robust_zscore import RobustZScore
from pipelines.detect.straggler import Straggler
from pipelines.detect.config import DetectionConfig
from pipelines.detect.observation import SCORE_COLUMNS, JobSummary, Observation
from pipelines.detect.engine import NodeDetectors, new_node_detectors
from pipelines.detect.job_peers import JobPeers
from pipelines.detect.node_absence import NodeAbsence

__all__ = [
    "SCORE_COLUMNS", "Absence", "CounterBurst", "DetectionConfig", "Detector", "ErrorTrend", "Exhaustion", "GpuMultivariate", "JobHealth",
    "JobPeers", "JobSummary", "NodeAbsence", "NodeDetectors", "Observation", "PeerGroup", "RobustZScore",
    "Straggler", "make_detector", "new_node_detectors", "register", "registered",
]
