"""Collectors: each one reads one kind of signal on a node and returns samples.

``REGISTRY`` maps a collector's config name to its class. The agent builds
every enabled one from ``collectors.<name>`` in its configuration; adding a
collector is a new module plus one line here.
"""

from agents.collectors.base import Collector, CollectorConfig, GpuIdentity, NodeContext, Sample
from agents.collectors.host import HostCollector
from agents.collectors.infiniband import InfinibandCollector
from agents.collectors.jobsdk import JobSdkCollector
from agents.collectors.logfiles import LogFilesCollector
from agents.collectors.nvml import NvmlCollector
from agents.collectors.prometheus_scrape import PrometheusCollector
from agents.collectors.xid import XidCollector

REGISTRY: dict[str, type[Collector]] = {c.name: c for c in (
    NvmlCollector, XidCollector, HostCollector, InfinibandCollector, LogFilesCollector, PrometheusCollector,
    JobSdkCollector,
)}

__all__ = ["REGISTRY", "Collector", "CollectorConfig", "GpuIdentity", "NodeContext", "Sample"]
