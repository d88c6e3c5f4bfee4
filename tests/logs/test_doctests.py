"""The examples in the log modules' docstrings run and stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["pipelines.logs.miner", "pipelines.logs.patterns", "pipelines.logs.anomalies", "pipelines.logs.explain",
           "pipelines.logs.processor", "pipelines.logs.ratelimit", "pipelines.logs.salvage", "pipelines.logs.sql",
           "pipelines.logs.headers", "pipelines.logs.masking", "pipelines.logs.offline", "pipelines.logs.sources",
           "agents.logrecords", "pipelines.worker_gc"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
