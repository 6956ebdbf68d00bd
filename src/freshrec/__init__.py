"""freshrec: a self-hosted recommendation service that learns from every event."""

from freshrec.config import EventWeights
from freshrec.errors import (
    FreshrecError,
    InvalidRecord,
    NotSupported,
    SourceUnavailable,
    StoreUnavailable,
    UnknownItem,
)
from freshrec.records import Event, Item, User, parse_event, parse_item, parse_user
from freshrec.serving.results import Filters, Recommendation

__all__ = [
    "Event",
    "EventWeights",
    "Filters",
    "FreshrecError",
    "InvalidRecord",
    "Item",
    "NotSupported",
    "Recommendation",
    "SourceUnavailable",
    "StoreUnavailable",
    "UnknownItem",
    "User",
    "parse_event",
    "parse_item",
    "parse_user",
]
