"""The examples in docstrings are part of the documentation: they must stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "schemas.alerts", "schemas.codec", "schemas.logs", "schemas.metrics", "pipelines.settings",
    "pipelines.store", "pipelines.kafka_auth", "pipelines.decide.incidents", "pipelines.decide.faults", "pipelines.decide.wording", "pipelines.decide.readings", "pipelines.processors.job_peers", "pipelines.transforms.aggregate", "pipelines.transforms.rules",
    "agents.simulator",
    "pipelines.query_policy", "pipelines.query_sandbox", "pipelines.web", "pipelines.listen_ports", "kafka_security",
    "agents.simulator_config", "pipelines.cli.backtest",
    "schemas.ddl_cluster", "pipelines.transforms.metric_columns", "pipelines.transforms.aggregate_columns",
    "pipelines.notify.notification", "pipelines.worker_memory", "pipelines.worker_gc",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
