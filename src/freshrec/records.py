"""The records freshrec ingests: events, items and users, with their validation.

Records are immutable ``msgspec`` structs: cheap to build, cheap to encode. The
``parse_*`` functions turn untrusted mappings (JSON bodies, CSV rows) into records
and raise :class:`~freshrec.errors.InvalidRecord` with a message that names the
field and says what is wrong.

>>> e = parse_event({"user": "u1", "item": "i1", "type": "view", "timestamp": 0})
>>> (e.user, e.item, e.type, e.timestamp)
('u1', 'i1', 'view', 0.0)
>>> parse_event({"user": "u1", "item": "i1", "type": "wink"})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
freshrec.errors.InvalidRecord: type: unknown event type 'wink' (known: add_to_cart, ...)
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from freshrec.errors import InvalidRecord
from freshrec.ids import MAX_ID_LENGTH, id_problem

MAX_TEXT_LENGTH = 20_000
MAX_CATEGORIES = 64
MAX_PROPERTIES = 64
DEFAULT_EVENT_TYPES = ("view", "click", "add_to_cart", "purchase", "rating")
# Timestamps outside this window are almost always unit mistakes (milliseconds sent
# as seconds, or a zero date), so they are refused instead of silently skewing decay.
MIN_TIMESTAMP = 0.0
MAX_TIMESTAMP = 32503680000.0  # year 3000


class Event(msgspec.Struct, frozen=True, gc=False):
    """One interaction of a user with an item."""

    user: str
    item: str
    type: str
    timestamp: float
    value: float | None = None
    id: str | None = None
    session: str | None = None
    request_id: str | None = None
    """The recommendation response that showed this item, when the event is a reaction
    to one (a click on a recommended item): it measures click-through (of an
    experiment's arms too, so the log keeps it)."""


class Item(msgspec.Struct, frozen=True):
    """A catalog entry; text and categories feed the content model."""

    id: str
    title: str = ""
    text: str = ""
    categories: tuple[str, ...] = ()
    properties: dict[str, Any] = {}
    available: bool = True
    timestamp: float | None = None

    @property
    def content(self) -> str:
        """The text the content model reads: title, text and categories."""
        return " ".join(part for part in (self.title, self.text, " ".join(self.categories)) if part)


class User(msgspec.Struct, frozen=True):
    """A user and their attributes."""

    id: str
    properties: dict[str, Any] = {}


class Impression(msgspec.Struct, frozen=True, gc=False):
    """What one recommendation request showed a user, as the rankers must learn from it.

    The request path only reads the model state; what it showed becomes this record, is
    appended to the log like an event, and the learner applies it in log position order,
    so every replica (and a replay from a snapshot) learns the same lesson from the
    user's next choice. It holds every candidate the ranker ordered, with the features
    the request saw: recomputing them later would see a model that has moved on.
    """

    user: str
    timestamp: float
    """The model's clock when it was shown (data time): impressions expire by it."""
    items: tuple[str, ...]
    """Every candidate the ranker ordered (not only the top k shown). Empty when the
    request teaches the rankers nothing (a list cut by an exclude list or a category)
    but solved the user's vector behind their events: the learner stores that vector."""
    features: bytes
    """float32, ``len(items)`` rows of ``n_features``, row-major."""
    n_features: int
    cold: bool = False
    """Shown to someone with no items yet: it teaches the cold ranker."""
    first_visit: bool = False
    """Shown to a user the model does not know (kept by id until their first event)."""
    request_id: str | None = None


class ServedList(msgspec.Struct, frozen=True, gc=False):
    """The list a request showed in an experiment, or a shadow model's unshown one.

    Logged like an impression (without the request waiting) so that every worker's lists
    reach one place in one order: the experiments' outcomes are computed from the log
    (:mod:`freshrec.experiments.outcomes`). The models never learn from it.
    """

    request_id: str
    user: str
    timestamp: float
    """Wall time when it was served."""
    items: tuple[str, ...]
    """The shown top k, in order."""
    experiment: str
    arm: str
    model: str
    shown: bool = True
    """False for a shadow model's list: scored against the user's next event only."""


def parse_event(
    raw: Mapping[str, Any],
    *,
    event_types: Collection[str] = DEFAULT_EVENT_TYPES,
    now: float | None = None,
) -> Event:
    """Validate a mapping into an :class:`Event`; a missing timestamp means ``now``."""
    _require_mapping(raw, "event")
    _refuse_unknown_fields(raw, _EVENT_FIELDS)
    user = _identifier(raw, "user")
    item = _identifier(raw, "item")
    kind = _identifier(raw, "type")
    if kind not in event_types:
        known = ", ".join(sorted(event_types))
        raise InvalidRecord(f"unknown event type {kind!r} (known: {known})", "type")
    value = _optional_number(raw, "value")
    if kind == "rating" and value is None:
        raise InvalidRecord("a rating event needs a numeric value", "value")
    timestamp = _timestamp(raw.get("timestamp"), now)
    return Event(
        user=user,
        item=item,
        type=kind,
        timestamp=timestamp,
        value=value,
        id=_optional_identifier(raw, "id"),
        session=_optional_identifier(raw, "session"),
        request_id=_optional_identifier(raw, "request_id"),
    )


def parse_item(raw: Mapping[str, Any], *, now: float | None = None) -> Item:
    """Validate a mapping into an :class:`Item`."""
    _require_mapping(raw, "item")
    _refuse_unknown_fields(raw, _ITEM_FIELDS)
    categories = raw.get("categories", ())
    if categories is None:
        categories = ()
    if isinstance(categories, str) or not isinstance(categories, list | tuple):
        raise InvalidRecord("must be a list of strings", "categories")
    if len(categories) > MAX_CATEGORIES:
        raise InvalidRecord(f"at most {MAX_CATEGORIES} categories", "categories")
    for category in categories:
        if not isinstance(category, str) or not category or len(category) > MAX_ID_LENGTH:
            raise InvalidRecord(
                f"each category must be a non-empty string of at most {MAX_ID_LENGTH} characters",
                "categories",
            )
    available = raw.get("available", True)
    if not isinstance(available, bool):
        raise InvalidRecord("must be true or false", "available")
    return Item(
        id=_identifier(raw, "id"),
        title=_text(raw, "title"),
        text=_text(raw, "text"),
        categories=tuple(dict.fromkeys(categories)),
        properties=_properties(raw),
        available=available,
        timestamp=_timestamp(raw.get("timestamp"), now),
    )


def parse_user(raw: Mapping[str, Any]) -> User:
    """Validate a mapping into a :class:`User`."""
    _require_mapping(raw, "user")
    _refuse_unknown_fields(raw, _USER_FIELDS)
    return User(id=_identifier(raw, "id"), properties=_properties(raw))


_EVENT_FIELDS = frozenset(Event.__struct_fields__)
_ITEM_FIELDS = frozenset(Item.__struct_fields__)
_USER_FIELDS = frozenset(User.__struct_fields__)


def _require_mapping(raw: object, what: str) -> None:
    if not isinstance(raw, Mapping):
        raise InvalidRecord(f"each {what} must be a JSON object, got {type(raw).__name__}")


def _refuse_unknown_fields(raw: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = [key for key in raw if key not in allowed]
    if unknown:
        names = ", ".join(repr(k) for k in sorted(map(str, unknown))[:5])
        raise InvalidRecord(f"unknown field(s) {names} (allowed: {', '.join(sorted(allowed))})")


def _identifier(raw: Mapping[str, Any], field: str) -> str:
    if field not in raw or raw[field] is None:
        raise InvalidRecord("is required", field)
    value = raw[field]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRecord(f"must be a string, got {type(value).__name__}", field)
    text = str(value)
    problem = id_problem(text)
    if problem:
        raise InvalidRecord(problem, field)
    return text


def _optional_identifier(raw: Mapping[str, Any], field: str) -> str | None:
    if raw.get(field) is None:
        return None
    return _identifier(raw, field)


def _optional_number(raw: Mapping[str, Any], field: str) -> float | None:
    value = raw.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRecord(f"must be a number, got {type(value).__name__}", field)
    number = float(value)
    if not math.isfinite(number):
        raise InvalidRecord("must be a finite number", field)
    return number


def _text(raw: Mapping[str, Any], field: str) -> str:
    value = raw.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRecord(f"must be a string, got {type(value).__name__}", field)
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidRecord(f"is longer than {MAX_TEXT_LENGTH} characters", field)
    return value


def _properties(raw: Mapping[str, Any]) -> dict[str, Any]:
    value = raw.get("properties")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRecord("must be a JSON object", "properties")
    if len(value) > MAX_PROPERTIES:
        raise InvalidRecord(f"at most {MAX_PROPERTIES} properties", "properties")
    for key, item in value.items():
        if not isinstance(key, str) or len(key) > MAX_ID_LENGTH:
            raise InvalidRecord(f"keys must be strings of at most {MAX_ID_LENGTH} characters",
                                "properties")
        if isinstance(item, str) and len(item) > MAX_TEXT_LENGTH:
            raise InvalidRecord(f"value of {key!r} is longer than {MAX_TEXT_LENGTH} characters",
                                "properties")
        if not isinstance(item, str | int | float | bool) and item is not None:
            raise InvalidRecord(f"value of {key!r} must be a string, number, boolean or null",
                                "properties")
    return dict(value)


def _timestamp(value: object, now: float | None) -> float:
    if value is None:
        return time.time() if now is None else now
    if isinstance(value, bool):
        raise InvalidRecord("must be seconds since the epoch or an ISO 8601 string", "timestamp")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRecord(
                f"{value[:40]!r} is not an ISO 8601 date-time", "timestamp"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
    else:
        raise InvalidRecord("must be seconds since the epoch or an ISO 8601 string", "timestamp")
    if not math.isfinite(seconds) or not MIN_TIMESTAMP <= seconds <= MAX_TIMESTAMP:
        raise InvalidRecord(
            "is out of range (expected seconds since 1970, before the year 3000; "
            "milliseconds must be divided by 1000)",
            "timestamp",
        )
    return seconds
