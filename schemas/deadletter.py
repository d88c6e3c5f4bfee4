"""Dead letters: a message the pipeline refused, with the reason a person can read."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import BaseModel, Field


class DeadLetter(BaseModel):
    v: Literal[1] = 1
    kind: Literal["deadletter"] = "deadletter"
    ts: float
    topic: str
    partition: int
    offset: int
    key: str = ""
    reason: str = Field(max_length=4096)
    stage: str = Field(default="validate", description="which stage refused it")
    payload_b64: str = Field(default="", description="the original bytes, base64, cut at 64 KiB")
    payload_bytes: int = 0

    @staticmethod
    def encode_payload(raw: bytes, limit: int = 65_536) -> str:
        return base64.b64encode(raw[:limit]).decode("ascii")
