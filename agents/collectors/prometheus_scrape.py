"""Prometheus scrape collector: read exporters a site already runs and forward their series.

Any Prometheus or OpenMetrics text endpoint works (dcgm-exporter,
node_exporter, vLLM, Triton), parsed with prometheus-client's own parsers.
Per target: keep/drop metrics by regex, rename metrics (exact map, then a
prefix), rename/drop/add labels, and map a label (dcgm-exporter's ``gpu``) to
the sample's GPU index so its series line up with the NVML collector's.

>>> t = ScrapeTarget(url="http://127.0.0.1:9400/metrics", rename={"DCGM_FI_DEV_GPU_TEMP": "gpu_temp_c"})
>>> convert_text('DCGM_FI_DEV_GPU_TEMP{gpu="3",UUID="GPU-x"} 61\\n', t)[0]
[{'gpu': 3, 'uuid': 'GPU-x', 'metric': 'gpu_temp_c', 'value': 61.0, 'unit': '', 'labels': {'gpu': '3', 'UUID': 'GPU-x'}}]
"""

from __future__ import annotations

import logging
import math
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.collectors.base import Collector, CollectorConfig, Sample

log = logging.getLogger("gpuwatch.agent.prometheus")

_NAME_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_:.]{0,127}$")
_LABEL_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


class ScrapeTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    #: Metrics kept (regex, whole name); empty keeps all.
    keep: list[str] = Field(default_factory=list)
    #: Metrics dropped (regex, whole name), applied after keep.
    drop: list[str] = Field(default_factory=list)
    #: Exact metric renames, source name -> our name.
    rename: dict[str, str] = Field(default_factory=dict)
    #: Prepended to names not in ``rename`` (e.g. "vllm_").
    prefix: str = ""
    rename_labels: dict[str, str] = Field(default_factory=dict)
    drop_labels: list[str] = Field(default_factory=list)
    #: Labels added to every sample from this target.
    labels: dict[str, str] = Field(default_factory=dict)
    #: Label holding a GPU index (dcgm-exporter: "gpu"); its samples get that ``gpu``.
    gpu_label: str | None = "gpu"
    uuid_label: str | None = "UUID"
    #: Samples kept per scrape at most; the rest are counted as dropped.
    max_samples: int = Field(default=5000, ge=1, le=20_000)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"target url must start with http:// or https:// (got {v!r})")
        return v

    @field_validator("keep", "drop")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for r in v:
            try:
                re.compile(r)
            except re.error as e:
                raise ValueError(f"{r!r} is not a valid regular expression: {e}") from None
        return v


class PrometheusConfig(CollectorConfig):
    enabled: bool = False
    interval_s: float | None = Field(default=15.0, gt=0, le=3600)
    targets: list[ScrapeTarget] = Field(default_factory=list)


class _Rules:
    """A target's rules, compiled, with the per-name decision cached."""

    def __init__(self, t: ScrapeTarget) -> None:
        self.t = t
        self.keep = [re.compile(r) for r in t.keep]
        self.drop = [re.compile(r) for r in t.drop]
        self._names: dict[str, str | None] = {}

    def name(self, src: str) -> str | None:
        if src in self._names:
            return self._names[src]
        out: str | None = None
        if (not self.keep or any(r.fullmatch(src) for r in self.keep)) and not any(r.fullmatch(src) for r in self.drop):
            out = self.t.rename.get(src) or f"{self.t.prefix}{src}"
            if not _NAME_OK.match(out):
                out = None
        self._names[src] = out
        return out


def convert_text(text: str, target: ScrapeTarget, openmetrics: bool = False,
                 rules: _Rules | None = None) -> tuple[list[Sample], int]:
    """Exposition text -> (samples, dropped count)."""
    if openmetrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    rules = rules or _Rules(target)
    t = target
    out: list[Sample] = []
    dropped = 0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name = rules.name(s.name)
            value = float(s.value)
            if name is None or not math.isfinite(value):
                dropped += 1
                continue
            if len(out) >= t.max_samples:
                dropped += 1
                continue
            labels = {}
            for k, v in s.labels.items():
                if k in t.drop_labels:
                    continue
                k = t.rename_labels.get(k, k)
                if _LABEL_OK.match(k) and len(labels) < 32:
                    labels[k] = v[:256]
            for k, v in t.labels.items():
                if len(labels) < 32:
                    labels[k] = v
            gpu = -1
            if t.gpu_label and s.labels.get(t.gpu_label, "").isdigit():
                gpu = min(int(s.labels[t.gpu_label]), 1023)
            sample = {"gpu": gpu, "uuid": s.labels.get(t.uuid_label, "")[:96] if t.uuid_label else "",
                      "metric": name, "value": value, "unit": ""}
            if labels:
                sample["labels"] = labels
            out.append(sample)
    return out, dropped


class PrometheusCollector(Collector):
    name = "prometheus"
    config_model = PrometheusConfig

    def __init__(self, config=None, context=None) -> None:
        super().__init__(config, context)
        self._rules = [_Rules(t) for t in self.config.targets]
        self._client = None
        self._counts = {"scrapes": 0, "samples": 0, "dropped": 0, "errors": 0}
        self._failing: set[str] = set()

    def start(self) -> None:
        if not self.config.targets:
            return  # nothing to scrape: httpx (the `scrape` extra of the agent-only install) is not needed
        try:
            import httpx
        except ImportError:
            raise RuntimeError("scraping exporters needs httpx: pip install 'gpuwatch-agent[scrape]'") from None

        self._client = httpx.Client(headers={"Accept": "application/openmetrics-text;version=1.0.0;q=0.5,"
                                                       "text/plain;version=0.0.4;q=0.4"})

    def collect(self, now: float) -> list[Sample]:
        out: list[Sample] = []
        errors = []
        for rules in self._rules:
            t = rules.t
            self._counts["scrapes"] += 1
            try:
                r = self._client.get(t.url, timeout=t.timeout_s)
                r.raise_for_status()
                om = "openmetrics" in r.headers.get("content-type", "")
                samples, dropped = convert_text(r.text, t, om, rules)
            except Exception as e:  # noqa: BLE001 - one bad target must not stop the others
                self._counts["errors"] += 1
                errors.append(f"{t.url}: {e}")
                if t.url not in self._failing:
                    self._failing.add(t.url)
                    log.warning("scraping %s failed: %s", t.url, e)
                continue
            if t.url in self._failing:
                self._failing.discard(t.url)
                log.info("scraping %s works again", t.url)
            self._counts["samples"] += len(samples)
            self._counts["dropped"] += dropped
            out.extend(samples)
        if errors and not out:
            raise RuntimeError("; ".join(errors))
        return out

    def stats(self) -> dict[str, int]:
        return dict(self._counts)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

