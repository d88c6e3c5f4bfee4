"""The agent's docstring examples must stay true (the repo-wide list in tests/test_doctests.py is the pipeline's)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "agents.config", "agents.kafka_env", "agents.logtail", "agents.collectors.nvml", "agents.collectors.nvml_fields",
    "agents.collectors.nvml_fake", "agents.collectors.gpu_reads", "agents.prometheus_exporter", "agents.environment",
    "agents.malloc_tuning", "agents.lean_imports",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
