"""Docstring examples of the operator's modules (kept apart from tests/test_doctests.py's list)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["pipelines.open_incidents", "pipelines.log_noise", "pipelines.console.access",
           "pipelines.notify.payload", "pipelines.notify.durations"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
