"""Shapes of the API for its OpenAPI schema: the contract clients code against.

Ingest bodies are validated record by record by :mod:`freshrec.ingest`, not by
these models (a batch may mix good and bad records); the models describe them.
Ids carry the rule of :mod:`freshrec.ids` as a schema-only ``pattern``: pydantic's
regex engine has no look-ahead, and the ingest code applies the rule itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from freshrec.ids import ID_PATTERN, ID_RULE, MAX_ID_LENGTH
from freshrec.records import (
    DEFAULT_EVENT_TYPES,
    MAX_CATEGORIES,
    MAX_PROPERTIES,
    MAX_TEXT_LENGTH,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
)

ID_SCHEMA: dict[str, Any] = {"pattern": ID_PATTERN, "minLength": 1,
                             "maxLength": MAX_ID_LENGTH}
"""The id rule as JSON Schema keywords, for bodies and path parameters alike."""

Id = Annotated[str, Field(description=ID_RULE, json_schema_extra=ID_SCHEMA)]
Text = Annotated[str, Field(max_length=MAX_TEXT_LENGTH)]
Category = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Timestamp = (Annotated[float, Field(ge=MIN_TIMESTAMP, le=MAX_TIMESTAMP,
                                    description="Seconds since the epoch")]
             | Annotated[str, Field(json_schema_extra={"format": "date-time"},
                                    description="ISO 8601")]
             | None)
Properties = Annotated[
    dict[Annotated[str, Field(max_length=MAX_ID_LENGTH)], Text | int | float | bool | None],
    Field(max_length=MAX_PROPERTIES)]


class ErrorAnswer(BaseModel):
    """The one shape of every error answer."""

    error: str = Field(description="What is wrong, in words")
    status: int = Field(description="The HTTP status, repeated")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field refuses the record


class EventIn(_Record):
    id: Id | None = Field(None, description="Unique id; a repeated id is a duplicate")
    user: Id
    item: Id
    type: str = Field(json_schema_extra={"enum": list(DEFAULT_EVENT_TYPES)})
    value: float | None = Field(None, description="Rating value (required for ratings)")
    timestamp: Timestamp = Field(None, description="Default: now")
    session: Id | None = None
    request_id: Id | None = Field(
        None, description="request_id of the recommendations that showed this item "
                          "(for click-through measurement)")


class EventBatch(_Record):
    model_config = ConfigDict(json_schema_extra={"examples": [{"events": [
        {"id": "e-1", "user": "u-1", "item": "sku-1", "type": "view"},
        {"user": "u-1", "item": "sku-2", "type": "rating", "value": 4.5,
         "timestamp": "2024-05-01T12:00:00Z"}]}]})

    events: list[EventIn] = Field(min_length=1)


class ItemIn(_Record):
    id: Id
    title: Text | None = None
    text: Text | None = None
    categories: list[Category] | None = Field(None, max_length=MAX_CATEGORIES)
    properties: Properties | None = None
    available: bool = True
    timestamp: Timestamp = None


class ItemBatch(_Record):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [
        {"id": "sku-1", "title": "Trail shoe", "categories": ["shoes"],
         "properties": {"price": 89.0}}]}]})

    items: list[ItemIn] = Field(min_length=1)


class UserIn(_Record):
    id: Id
    properties: Properties | None = None


class UserBatch(_Record):
    model_config = ConfigDict(json_schema_extra={"examples": [{"users": [
        {"id": "u-1", "properties": {"country": "NL"}}]}]})

    users: list[UserIn] = Field(min_length=1)


class Rejected(BaseModel):
    index: int
    error: str


class IngestAnswer(BaseModel):
    accepted: int
    duplicates: int = 0
    rejected: list[Rejected]


class IngestRefused(ErrorAnswer):
    """A 422 of an ingest route: the batch was read but no record was usable (the batch
    answer rides along), or the body is not a batch at all (the error alone)."""

    accepted: int | None = None
    duplicates: int | None = None
    rejected: list[Rejected] | None = None


class RecommendedItem(BaseModel):
    id: str
    score: float
    source: str = Field(description="The model or rule that put the item here")


class ExperimentArm(BaseModel):
    id: str
    arm: str


class Recommendations(BaseModel):
    items: list[RecommendedItem]
    model: str
    request_id: str
    experiment: ExperimentArm | None = Field(
        None, description="The experiment and arm that answered (only in an experiment)")


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt option is an error, not a default

    recent_items: list[str] = Field(description="Items the session touched, oldest first",
                                    max_length=200)
    k: int = Field(10, ge=1, le=500)
    category: str | None = None
    exclude: list[str] = Field(default_factory=list, max_length=1000)
    exclude_seen: bool = True
    available_only: bool = True


class QuarantineEntry(BaseModel):
    id: int
    kind: str
    raw: str
    reason: str
    created: float


class QuarantinePage(BaseModel):
    total: int
    records: list[QuarantineEntry]


class Erased(BaseModel):
    user: str
    events_erased: int
    found: bool


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="ready, or recovering (with a 503)")
    model: str | None = Field(None, description="The serving model version, once ready")
    events: int | None = Field(None, description="Events the models learned from, once ready")
    position: int | None = Field(
        None, description="The log position the answers reflect (events, catalog changes "
                          "and impressions share positions), once ready")
