"""Detection configuration: which detector scores which metric family, and how verdicts become conditions.

The default lives in ``detection.yaml`` beside this file; ``DetectionConfig.from_yaml(path)``
loads another. Every section validates itself and names what is wrong.

>>> cfg = DetectionConfig.default()
>>> cfg.families["ecc_errors"].counter, cfg.families["ecc_errors"].alert.alertname
(True, 'GpuEccErrorBurst')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.detect.base import detector_class, make_detector

DEFAULT_PATH = Path(__file__).with_name("detection.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertSpec(_Section):
    """How a detector's verdict becomes a :class:`~pipelines.decide.Condition`."""

    alertname: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    severity: str = Field(default="warning", pattern=r"^(info|warning|critical)$")
    for_s: float = Field(default=0.0, ge=0)
    keep_firing_for_s: float = Field(default=0.0, ge=0)


class _DetectorSection(_Section):
    enabled: bool = True
    detector: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _buildable(self):
        make_detector(self.detector, **self.params)  # raises a ValueError that says what is wrong
        return self

    def build(self):
        return make_detector(self.detector, **self.params)


class FamilyConfig(_DetectorSection):
    """A family of per-series metrics scored by one detector (tier 1)."""

    detector: str = "robust_zscore"
    metrics: list[str] = Field(min_length=1)
    #: Monotonic counters (``*_total``): score their per-second rate, not the count.
    counter: bool = False
    alert: AlertSpec | None = None


class MultivariateConfig(_DetectorSection):
    detector: str = "gpu_multivariate"
    metrics: list[str] = Field(min_length=2)
    #: Score every n-th batch (River trees cost tens of microseconds per GPU).
    every_n: int = Field(default=1, ge=1)
    alert: AlertSpec | None = None
    #: How many contributing metrics go into the evidence.
    evidence_top: int = Field(default=4, ge=1, le=16)


class StragglerConfig(_DetectorSection):
    detector: str = "straggler"
    straggler_alert: AlertSpec
    stalled_alert: AlertSpec


class PeerMetricConfig(_DetectorSection):
    detector: str = "peer_group"
    metric: str = "gpu_temp_c"
    #: Compare ``metric`` less the part this metric explains (learned linear fit over the node's GPUs), e.g.
    #: temperature less what power explains: a GPU serving more load runs warmer, a failing fan at any load.
    adjust_for: str | None = None
    alert: AlertSpec


class JobHealthConfig(_DetectorSection):
    detector: str = "job_health"
    #: Check name (see job_health.CHECKS) -> alert it raises; checks sharing an alert make one incident.
    alerts: dict[str, AlertSpec]
    #: Forget a job not seen for this long.
    forget_after_s: float = 900.0


class ResourceConfig(_Section):
    name: str
    used: str
    limit: str | None = None
    free: str | None = None
    alert: AlertSpec
    #: Severity becomes critical when the resource is forecast full sooner than this.
    critical_within_s: float = 300.0

    @model_validator(mode="after")
    def _one_bound(self):
        if (self.limit is None) == (self.free is None):
            raise ValueError(f"resource {self.name!r}: give exactly one of 'limit' or 'free'")
        return self


class ExhaustionConfig(_DetectorSection):
    detector: str = "exhaustion"
    resources: list[ResourceConfig]


class AbsenceConfig(_DetectorSection):
    detector: str = "absence"
    alert: AlertSpec


class ErrorTrendConfig(_DetectorSection):
    """Early warning: rising error counters, pending remaps, link downgrades (see error_trend.py)."""

    detector: str = "error_trend"
    alert: AlertSpec


class DetectionConfig(_Section):
    """All of detection, for one pipeline."""

    #: ClickHouse database named in evidence queries.
    database: str = "gpuwatch"
    #: Score rows for ClickHouse: ``top`` (per GPU and detector, the highest subject when its score is above 0,
    #: plus every anomalous one: a detector that saw nothing writes nothing, and a missing row reads as 0),
    #: ``all`` (every subject, zeros too) or ``none``.
    score_rows: str = Field(default="top", pattern=r"^(top|all|none)$")
    #: Seconds of history before an incident's onset that its evidence query shows.
    evidence_lookback_s: float = 900.0
    families: dict[str, FamilyConfig] = Field(default_factory=dict)
    #: The family that scores metrics no family names (None: they are not scored). ``gpuwatch backtest``
    #: sets it to ``generic``, so a series of any metric gets a score, never silence.
    default_family: str | None = None
    multivariate: MultivariateConfig | None = None
    straggler: StragglerConfig | None = None
    hotspot: PeerMetricConfig | None = None
    job_health: JobHealthConfig | None = None
    exhaustion: ExhaustionConfig | None = None
    gpu_absence: AbsenceConfig | None = None
    node_absence: AbsenceConfig | None = None
    job_peers: PeerMetricConfig | None = None
    error_trend: ErrorTrendConfig | None = None

    @field_validator("families")
    @classmethod
    def _one_family_per_metric(cls, v: dict[str, FamilyConfig]) -> dict[str, FamilyConfig]:
        owner: dict[str, str] = {}
        for name, fam in v.items():
            detector_class(fam.detector)
            for m in fam.metrics:
                if m in owner:
                    raise ValueError(f"metric {m!r} is in both families {owner[m]!r} and {name!r}; "
                                     "a metric belongs to one family")
                owner[m] = name
        return v

    @model_validator(mode="after")
    def _default_family_exists(self):
        if self.default_family is not None and self.default_family not in self.families:
            raise ValueError(f"default_family {self.default_family!r} is not one of the families "
                             f"({', '.join(self.families) or 'none'})")
        return self

    @classmethod
    def from_yaml(cls, path: str | Path) -> "DetectionConfig":
        try:
            data = yaml.safe_load(Path(path).read_bytes().decode("utf-8")) or {}
        except OSError as e:
            raise ValueError(f"cannot read detection config {path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise ValueError(f"detection config {path} is not UTF-8 text") from None
        except yaml.YAMLError as e:
            raise ValueError(f"detection config {path} is not valid YAML: {' '.join(str(e).split())}") from None
        if not isinstance(data, dict) or not data:  # empty: nothing would be detected, and nothing said
            raise ValueError(f"detection config {path} must be a mapping of detectors "
                             "(see pipelines/detect/detection.yaml)")
        try:
            return cls.model_validate(data)
        except RecursionError:
            raise ValueError(f"detection config {path} is nested too deeply (a YAML alias that contains itself?)") from None

    @classmethod
    def default(cls) -> "DetectionConfig":
        return cls.from_yaml(DEFAULT_PATH)
