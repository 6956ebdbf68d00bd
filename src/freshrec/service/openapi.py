"""The OpenAPI document's missing parts: errors the routes answer, bodies they read themselves.

FastAPI documents what it validates. But every keyed route may also answer 401 and
403 (the key check), a body route 400 and 413 (the JSON parser, the size limit), and
the ingest routes read their bodies record by record, so FastAPI never sees their
models. This module documents all of it, with the one error shape
(:class:`~freshrec.service.schemas.ErrorAnswer`), and the bearer key as the scheme.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from freshrec.service.schemas import ErrorAnswer, IngestRefused

COMPONENTS = "#/components/schemas/{model}"
ERROR_MODELS = (ErrorAnswer, IngestRefused)

ERRORS: dict[int, str] = {
    400: "Malformed JSON, or an empty body",
    401: "No API key, a malformed Authorization header, or an unknown or revoked key",
    403: "The key lacks the scope this route needs",
    404: "Unknown resource; also what a path id outside the id rule (e.g. holding a "
         "newline) gets, since it matches no route",
    409: "The request conflicts with the model lifecycle's current state",
    413: "The body is larger than the size limit, or holds more records than a batch may",
    422: "A parameter or the body is invalid; the message says which and why",
    503: "Storage is unavailable; nothing was stored: retry later",
}
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "Seconds to wait before retrying",
                          "schema": {"type": "integer"}}},
}
KEYED = (401, 403, 503)
"""What any route behind a key may answer."""
WITH_BODY = (400, 413, 422)
"""What a route reading a JSON body may answer."""
WITH_PATH_ID = (404, 422)
"""What a route with an id in its path may answer."""


def errors(*statuses: int, ingest: bool = False) -> dict[int | str, Any]:
    """FastAPI ``responses`` for these error statuses (an ingest 422 carries the batch answer).

    Always JSON, whatever the route's own media type: the content is spelt out (by
    reference to :data:`ERROR_MODELS`, which :meth:`ApiDocument.install` registers),
    since FastAPI would give a ``model`` the route's media type, text for /metrics.
    """
    documented: dict[int | str, Any] = {}
    for status in sorted(set(statuses)):
        model = IngestRefused if ingest and status == 422 else ErrorAnswer
        schema = {"$ref": COMPONENTS.format(model=model.__name__)}
        documented[status] = {"description": ERRORS[status],
                              "content": {"application/json": {"schema": schema}}}
        if status in HEADERS:
            documented[status]["headers"] = HEADERS[status]
    return documented


class ApiDocument:
    """Completes an app's OpenAPI document: the bodies routes read themselves (documented
    by reference), the error models, and the bearer key scheme."""

    def __init__(self) -> None:
        self.models: list[type[BaseModel]] = []

    def body(self, model: type[BaseModel]) -> dict[str, Any]:
        """``openapi_extra`` for a route that reads a ``model`` body itself."""
        self.models.append(model)
        schema = {"$ref": COMPONENTS.format(model=model.__name__)}
        return {"requestBody": {"required": True,
                                "content": {"application/json": {"schema": schema}}}}

    def install(self, app: FastAPI) -> None:
        """Add the referenced models and the key scheme when ``app`` builds its document."""
        generate = app.openapi

        def openapi() -> dict[str, Any]:
            if app.openapi_schema is None:
                document = generate()
                components = document.setdefault("components", {})
                components.setdefault("schemas", {}).update(self._definitions())
                _document_bearer_key(document)
            return app.openapi_schema  # type: ignore[return-value]  # set by generate()

        app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook

    def _definitions(self) -> dict[str, Any]:
        models: list[type[BaseModel]] = [*self.models, *ERROR_MODELS]
        _, top = models_json_schema([(model, "validation") for model in models],
                                    ref_template=COMPONENTS)
        return dict(top["$defs"])


def _document_bearer_key(document: dict[str, Any]) -> None:
    """Operations that can answer 401 need the key: say so the way OpenAPI tools read."""
    document["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "An API key: 'Authorization: Bearer <key>'"}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if "401" in operation.get("responses", {}):
                operation["security"] = [{"bearer": []}]
