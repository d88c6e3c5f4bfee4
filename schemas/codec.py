"""Bytes <-> models, with reasons a person can read when it goes wrong.

Every consumer decodes through :func:`decode`, so a malformed message anywhere
is refused the same way: a :class:`SchemaError` whose text goes verbatim into
the dead-letter topic.

>>> import time
>>> from schemas.metrics import MetricBatch
>>> raw = encode(MetricBatch(node="n1", ts=time.time(), samples=[
...     {"gpu": 0, "metric": "gpu_util", "value": 97.0}]))
>>> decode(raw, MetricBatch).node
'n1'
>>> decode(b"{not json", MetricBatch)
Traceback (most recent call last):
...
schemas.codec.SchemaError: invalid JSON: unexpected character, expected a string key: line 1 column 2 (char 1)
"""

from __future__ import annotations

from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

#: Largest message accepted from the wire; Kafka's default max is 1 MiB too.
MAX_PAYLOAD_BYTES = 1_048_576

M = TypeVar("M", bound=BaseModel)


class SchemaError(ValueError):
    """A message that does not meet the contract. ``str()`` is the reason."""


def encode(model: BaseModel) -> bytes:
    return orjson.dumps(model.model_dump(mode="json", exclude_none=True))


def encode_dict(payload: dict) -> bytes:
    """Encode an already-plain dict (the agents' hot path skips model building)."""
    return orjson.dumps(payload)


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"]) or "message"
        parts.append(f"{loc}: {e['msg']}")
    more = err.error_count() - 5
    if more > 0:
        parts.append(f"(+{more} more errors)")
    return "; ".join(parts)


def decode(raw: bytes | bytearray | memoryview | None, model: type[M], max_bytes: int = MAX_PAYLOAD_BYTES) -> M:
    if raw is None:
        raise SchemaError("empty message (null value)")
    if len(raw) > max_bytes:
        raise SchemaError(f"payload of {len(raw)} bytes is over the {max_bytes}-byte limit")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise SchemaError(f"invalid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise SchemaError(f"expected a JSON object, got {type(obj).__name__}")
    try:
        return model.model_validate(obj)
    except ValidationError as e:
        raise SchemaError(f"{model.__name__} invalid: {_describe(e)}") from None
