"""Shapes of the API for its OpenAPI schema: the contract clients code against.

Ingest bodies are validated record by record by :mod:`freshrec.ingest`, not by
these models (a batch may mix good and bad records); the models describe them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventIn(BaseModel):
    id: str | None = Field(None, description="Unique id; a repeated id is a duplicate")
    user: str
    item: str
    type: str = Field(description="view, click, add_to_cart, purchase or rating")
    value: float | None = Field(None, description="Rating value (required for ratings)")
    timestamp: float | str | None = Field(
        None, description="Seconds since the epoch or ISO 8601; default: now")
    session: str | None = None
    request_id: str | None = Field(
        None, description="request_id of the recommendations that showed this item "
                          "(for click-through measurement)")


class EventBatch(BaseModel):
    events: list[EventIn]


class ItemIn(BaseModel):
    id: str
    title: str | None = None
    text: str | None = None
    categories: list[str] | None = None
    properties: dict[str, Any] | None = None
    available: bool | None = True
    timestamp: float | str | None = None


class ItemBatch(BaseModel):
    items: list[ItemIn]


class UserIn(BaseModel):
    id: str
    properties: dict[str, Any] | None = None


class UserBatch(BaseModel):
    users: list[UserIn]


class Rejected(BaseModel):
    index: int
    error: str


class IngestAnswer(BaseModel):
    accepted: int
    duplicates: int = 0
    rejected: list[Rejected]


class RecommendedItem(BaseModel):
    id: str
    score: float
    source: str = Field(description="The model or rule that put the item here")


class Recommendations(BaseModel):
    items: list[RecommendedItem]
    model: str
    request_id: str


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


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a body the route reads itself."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}
