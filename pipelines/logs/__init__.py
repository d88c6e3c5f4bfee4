"""Log processing: raw lines -> templates, critical events, anomalies and alert explanations.

One job per module: :mod:`miner` (drain3 templates, stable ids), :mod:`patterns`
(critical lines -> node events, from ``patterns.yaml``), :mod:`anomalies` (new
templates, bursts, error rates -> conditions), :mod:`explain` (evidence for an
alert), :mod:`ratelimit` (flood control), :mod:`salvage` (decoding bad input),
and :mod:`processor`, which runs them in order for one batch.
"""

from pipelines.logs.anomalies import LogAnomalySettings, Observation
from pipelines.logs.explain import LogExplainer, fleet_templates
from pipelines.logs.miner import TemplateMiner, template_id
from pipelines.logs.patterns import PatternBook
from pipelines.logs.processor import LOG_COLUMNS, TEMPLATE_COLUMNS, TEMPLATE_TABLE, LogOutput, LogProcessor
from pipelines.logs.salvage import salvage_log_batch

__all__ = ["LOG_COLUMNS", "TEMPLATE_COLUMNS", "TEMPLATE_TABLE", "LogAnomalySettings", "LogExplainer", "LogOutput",
           "LogProcessor", "Observation", "PatternBook", "TemplateMiner", "fleet_templates", "salvage_log_batch",
           "template_id"]
