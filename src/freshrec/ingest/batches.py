"""Per-record validation of a batch: good records go on, bad ones come back with a reason.

A batch is refused as a whole only when it is not a batch at all (malformed
JSON, wrong shape, empty, too large). Otherwise each record is validated on its
own, so one bad record never blocks the good ones next to it.

>>> from freshrec.records import parse_user
>>> batch = parse_batch(b'{"users": [{"id": "a"}, {"id": 5.5}]}', "users", parse_user, 100)
>>> [u.id for u in batch.valid], [(r.index, r.error) for r in batch.rejected]
(['a'], [(1, 'id: must be a string, got float')])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec

from freshrec.errors import InvalidRecord

Record = TypeVar("Record")
MAX_RAW_CHARS = 10_000


class BadBatch(ValueError):
    """The body as a whole is unusable; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Rejection:
    index: int
    error: str
    raw: str
    """The record as received (JSON text, truncated), for the quarantine."""


@dataclass
class ParsedBatch(Generic[Record]):
    valid: list[Record] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    """Position in the request of each valid record."""
    rejected: list[Rejection] = field(default_factory=list)


def decode_body(body: bytes) -> Any:
    if not body:
        raise BadBatch("the request body is empty; send a JSON object")
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as error:
        raise BadBatch(f"malformed JSON: {error}") from None
    except RecursionError:
        raise BadBatch("malformed JSON: nested too deeply") from None


def parse_batch(body: bytes, key: str, parse: Callable[[Any], Record],
                max_records: int) -> ParsedBatch[Record]:
    """Validate ``{"<key>": [record, ...]}`` record by record."""
    document = decode_body(body)
    if not isinstance(document, dict):
        raise BadBatch(f'expected a JSON object like {{"{key}": [...]}}, '
                       f"got {type(document).__name__}", status=422)
    if key not in document:
        raise BadBatch(f'missing field "{key}": expected {{"{key}": [...]}}', status=422)
    unknown = sorted(str(name) for name in document if name != key)
    if unknown:
        names = ", ".join(repr(name) for name in unknown[:5])
        raise BadBatch(f'unknown field(s) {names}: expected {{"{key}": [...]}}', status=422)
    records = document[key]
    if not isinstance(records, list):
        raise BadBatch(f'"{key}" must be a list, got {type(records).__name__}', status=422)
    if not records:
        raise BadBatch(f'"{key}" is empty: send at least one record', status=422)
    if len(records) > max_records:
        raise BadBatch(f"too many records: {len(records)} in one batch, the limit is "
                       f"{max_records}; split the batch", status=413)
    batch: ParsedBatch[Record] = ParsedBatch()
    for index, raw in enumerate(records):
        try:
            batch.valid.append(parse(raw))
            batch.indices.append(index)
        except InvalidRecord as error:
            batch.rejected.append(Rejection(index, str(error), _raw_text(raw)))
    return batch


def _raw_text(raw: Any) -> str:
    try:
        text = msgspec.json.encode(raw).decode()
    except (TypeError, msgspec.EncodeError):
        text = repr(raw)
    return text[:MAX_RAW_CHARS]
