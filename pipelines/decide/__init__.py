"""Decide: turn per-tick conditions into alert incidents (firing once, then resolved), one per fault."""

from pipelines.decide.condition import Condition
from pipelines.decide.faults import FaultIncidents
from pipelines.decide.incidents import IncidentBook

__all__ = ["Condition", "FaultIncidents", "IncidentBook"]
