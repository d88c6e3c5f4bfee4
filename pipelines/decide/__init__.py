"""Decide: turn per-tick conditions into alert incidents (firing once, then resolved)."""

from pipelines.decide.condition import Condition
from pipelines.decide.incidents import IncidentBook

__all__ = ["Condition", "IncidentBook"]
