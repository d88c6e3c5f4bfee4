"""Log processing: raw lines -> templates, critical events, anomalies and alert explanations.

One job per module: :mod:`headers` (a line's header fields and message), :mod:`masking`
(variable tokens), :mod:`miner` (drain templates, stable ids, lineage), :mod:`offline`
(a whole file, two passes, for the CLI), :mod:`patterns`
(critical lines -> node events, from ``patterns.yaml``), :mod:`anomalies` (new
templates, bursts, error rates -> conditions), :mod:`explain` (evidence for an
alert), :mod:`ratelimit` (flood control), :mod:`salvage` (decoding bad input),
and :mod:`processor`, which runs them in order for one batch.
"""

from pipelines.logs.anomalies import LogAnomalySettings, Observation
from pipelines.logs.explain import LogExplainer, fleet_templates
from pipelines.logs.miner import TemplateMiner, template_id
from pipelines.logs.patterns import PatternBook
from pipelines.logs.processor import (LINEAGE_COLUMNS, LINEAGE_TABLE, LOG_COLUMNS, TEMPLATE_COLUMNS, TEMPLATE_TABLE,
                                     LogOutput, LogProcessor)
from pipelines.logs.salvage import salvage_log_batch

__all__ = ["LINEAGE_COLUMNS", "LINEAGE_TABLE", "LOG_COLUMNS", "TEMPLATE_COLUMNS", "TEMPLATE_TABLE", "LogAnomalySettings", "LogExplainer", "LogOutput",
           "LogProcessor", "Observation", "PatternBook", "TemplateMiner", "fleet_templates", "salvage_log_batch",
           "template_id"]
