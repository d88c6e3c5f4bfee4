"""Shared field types and the base model for every wire message.

Models are strict: a string where a number belongs is an error, not a guess.
NaN and infinities are refused everywhere, and timestamps must be plausible,
because one bad clock on one node must not poison a whole cluster's windows.
"""

from __future__ import annotations

import math
import time
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

#: How far ahead of the receiver's clock a timestamp may be (clock skew allowance).
MAX_FUTURE_SKEW_S = 300.0
#: How old a timestamp may be: an agent's spool may replay old data, but not years.
MAX_AGE_S = 30 * 24 * 3600.0


def _plausible_epoch(ts: float) -> float:
    if not math.isfinite(ts):
        raise ValueError("timestamp must be a finite number of seconds since the epoch")
    now = time.time()
    if ts > now + MAX_FUTURE_SKEW_S:
        raise ValueError(
            f"timestamp {ts:.3f} is {ts - now:.0f}s in the future; "
            f"at most {MAX_FUTURE_SKEW_S:.0f}s of clock skew is accepted"
        )
    if ts < now - MAX_AGE_S:
        raise ValueError(f"timestamp {ts:.3f} is older than {MAX_AGE_S / 86400:.0f} days")
    return ts


EpochSeconds = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_plausible_epoch)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
NodeId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$")]
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_:.]{0,127}$")]
LabelKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")]
LabelValue = Annotated[str, StringConstraints(max_length=256)]
Labels = Annotated[dict[LabelKey, LabelValue], Field(max_length=32)]


class WireModel(BaseModel):
    """Base for messages on Kafka: strict types, immutable, unknown fields ignored.

    Unknown fields are ignored rather than refused so that a newer agent can add
    an optional field without a pipeline upgrade; a breaking change bumps the
    model's ``v`` instead.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")
