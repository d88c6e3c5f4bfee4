"""Raw log-batch bytes -> :class:`LogBatch`, repairing what a strict decode would refuse.

:func:`schemas.codec.decode` refuses a whole message for one bad byte, which
is right for metrics but wrong for logs: a tailed file can hold any bytes,
and one binary line must not cost the 5,000 good lines around it. So:

* invalid UTF-8 (and JSON ``\\ud800``-style lone surrogates) becomes U+FFFD;
* a record longer than the contract allows is truncated with the marker;
* an over-long level or source is cut;
* a record that is still invalid (a bad timestamp, say) is dropped alone and
  its reason reported; only a batch with no usable record is refused.

Records are validated by the contract's own field rules
(:class:`schemas.logs.LogRecord`) but held in slots (:class:`DecodedRecord`):
a batch of 1,000 pydantic models is 3,000 objects for the garbage collector
(each model, its ``__dict__`` and its set of fields), slots are 1,000, and the
decode is a fifth faster.

>>> import time, orjson
>>> raw = orjson.dumps({"node": "n1", "records": [{"ts": time.time(), "message": "ok"}]})
>>> raw = raw.replace(b"ok", b"o\\xffk")
>>> s = salvage_log_batch(raw)
>>> s.batch.records[0].message, s.repaired_utf8
('o\\ufffdk', True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import orjson
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as wire_dataclass

from schemas.base import EpochSeconds, Labels, NodeId, WireModel
from schemas.codec import MAX_PAYLOAD_BYTES, SchemaError
from schemas.logs import MAX_LINE_CHARS, TRUNCATION_MARKER, truncate_line

#: A JSON \\uXXXX escape of a high surrogate not followed by a low one, or a low one not after a high one.
_LONE_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
                             rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_SOURCE_MAX = 512
_LEVEL_MAX = 16
#: The wire models' settings (strict, unknown fields ignored); ``frozen`` goes on the decorator.
_WIRE = ConfigDict(**{k: v for k, v in WireModel.model_config.items() if k != "frozen"})


@wire_dataclass(slots=True, frozen=True, config=_WIRE)
class DecodedRecord:
    """A :class:`~schemas.logs.LogRecord`, same fields and rules, in slots (one object, not three)."""

    ts: EpochSeconds
    message: str = Field(max_length=MAX_LINE_CHARS + len(TRUNCATION_MARKER))
    level: str = Field(default="", max_length=_LEVEL_MAX)
    source: str = Field(default="", max_length=_SOURCE_MAX)
    labels: Labels = Field(default_factory=dict)


@wire_dataclass(slots=True, frozen=True, config=_WIRE)
class DecodedBatch:
    """A :class:`~schemas.logs.LogBatch` of :class:`DecodedRecord`."""

    node: NodeId
    records: list[DecodedRecord] = Field(min_length=1, max_length=50_000)
    v: Literal[1] = 1
    kind: Literal["logs"] = "logs"


#: Strict slots dataclasses take only JSON (or their own instances): the repair paths below
#: validate what they fixed up as JSON again, which is what it came as.
_BATCH, _RECORD = TypeAdapter(DecodedBatch), TypeAdapter(DecodedRecord)


@dataclass
class SalvagedBatch:
    #: Reads as a :class:`LogBatch` does (``node``, ``records``; each record ``ts``, ``message``...).
    batch: DecodedBatch
    repaired_utf8: bool = False
    truncated: int = 0
    #: One reason per record dropped, e.g. "record 7: ts: timestamp ... older than 30 days".
    rejected: list[str] = field(default_factory=list)


def salvage_log_batch(raw: bytes | bytearray | memoryview | None,
                      max_bytes: int = MAX_PAYLOAD_BYTES) -> SalvagedBatch:
    """Decode a log batch; raise :class:`SchemaError` only when nothing in it is usable."""
    if raw is None:
        raise SchemaError("empty message (null value)")
    raw = bytes(raw)
    if len(raw) > max_bytes:
        raise SchemaError(f"payload of {len(raw)} bytes is over the {max_bytes}-byte limit")
    try:  # the common case, and the fastest: pydantic parses and validates the JSON in one pass
        return SalvagedBatch(_BATCH.validate_json(raw))
    except ValidationError:
        pass
    repaired = False
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        fixed = _LONE_SURROGATE.sub(rb"\\ufffd", raw).decode("utf-8", "replace")
        try:
            obj = orjson.loads(fixed)
        except orjson.JSONDecodeError as e:
            raise SchemaError(f"invalid JSON: {e}") from None
        repaired = True
    if not isinstance(obj, dict):
        raise SchemaError(f"expected a JSON object, got {type(obj).__name__}")
    try:
        return SalvagedBatch(_BATCH.validate_json(orjson.dumps(obj)), repaired_utf8=repaired)
    except ValidationError:
        pass  # find the bad records one by one below
    records = obj.get("records")
    if not isinstance(records, list) or not records:
        raise SchemaError("LogBatch invalid: records: must be a non-empty list")
    good, rejected, truncated = [], [], 0
    for i, rec in enumerate(records[:50_000]):
        if isinstance(rec, dict):
            rec, cut = _trim(rec)
            truncated += cut
        try:
            good.append(_RECORD.validate_json(orjson.dumps(rec)))
        except ValidationError as e:
            err = e.errors()[0]
            rejected.append(f"record {i}: {'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}")
    if len(records) > 50_000:
        rejected.append(f"records 50000..{len(records) - 1}: over the 50,000-record batch limit")
    if not good:
        raise SchemaError("LogBatch invalid: no usable record; " + "; ".join(rejected[:5]))
    try:
        batch = _BATCH.validate_json(orjson.dumps({**obj, "records": good}))
    except ValidationError as e:
        err = e.errors()[0]
        raise SchemaError(f"LogBatch invalid: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None
    return SalvagedBatch(batch, repaired_utf8=repaired, truncated=truncated, rejected=rejected)


def _already_cut(msg: str) -> bool:
    return len(msg) == MAX_LINE_CHARS + len(TRUNCATION_MARKER) and msg.endswith(TRUNCATION_MARKER)


def _trim(rec: dict) -> tuple[dict, int]:
    msg, cut = rec.get("message"), 0
    if isinstance(msg, str) and len(msg) > MAX_LINE_CHARS and not _already_cut(msg):
        rec = {**rec, "message": truncate_line(msg)}
        cut = 1
    for key, limit in (("source", _SOURCE_MAX), ("level", _LEVEL_MAX)):
        v = rec.get(key)
        if isinstance(v, str) and len(v) > limit:
            rec = {**rec, key: v[-limit:] if key == "source" else v[:limit]}
    return rec, cut
