"""The server's /openapi.json is a valid, complete contract: what generated clients code against.

A real validator checks the document; every ``$ref`` must resolve (the validator
lets a dangling one through, so the test walks them itself); every keyed route
documents the statuses the key check and the body reader answer, with the one
error shape; ids carry the same rule the ingest code applies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from freshrec.ids import ID_PATTERN, MAX_ID_LENGTH

from ._server import Server

ERROR_REF = "#/components/schemas/ErrorAnswer"
BODY_ROUTES = [("post", "/v1/events"), ("post", "/v1/items"), ("post", "/v1/users"),
               ("post", "/v1/recommendations"), ("post", "/v1/models/train")]


@pytest.fixture(scope="module")
def document(admin: httpx.Client) -> dict[str, Any]:
    answer = admin.get("/openapi.json")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_the_schema_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    found = list(refs(document))
    assert len(found) > 20
    for ref in found:
        resolve(document, ref)


def test_every_ingest_body_is_documented_by_its_model(document: dict[str, Any]) -> None:
    for route, model, record in [("/v1/events", "EventBatch", "EventIn"),
                                 ("/v1/items", "ItemBatch", "ItemIn"),
                                 ("/v1/users", "UserBatch", "UserIn")]:
        body = document["paths"][route]["post"]["requestBody"]
        schema = body["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}
        batch = resolve(document, schema["$ref"])
        items = next(iter(batch["properties"].values()))["items"]
        assert resolve(document, items["$ref"])["title"] == record


def test_keyed_routes_document_key_errors_in_the_one_shape(document: dict[str, Any]) -> None:
    open_routes = {"/healthz", "/readyz", "/openapi.json", "/docs"}
    keyed = [(m, p, op) for m, p, op in operations(document) if p not in open_routes]
    assert len(keyed) >= 18
    for method, path, operation in keyed:
        assert operation["security"] == [{"bearer": []}], (method, path)
        for status in ("401", "403", "503"):
            answer = operation["responses"].get(status)
            assert answer, f"{method} {path} does not document {status}"
            assert answer["content"] == {"application/json": {"schema": {"$ref": ERROR_REF}}}
    error = resolve(document, ERROR_REF)
    assert error["required"] == ["error", "status"]


def test_body_routes_document_parse_and_size_errors(document: dict[str, Any]) -> None:
    for method, path in BODY_ROUTES:
        responses = document["paths"][path][method]["responses"]
        assert {"400", "413", "422"} <= set(responses), (method, path)
    refused = document["paths"]["/v1/events"]["post"]["responses"]["422"]
    shape = resolve(document, refused["content"]["application/json"]["schema"]["$ref"])
    assert {"error", "status", "rejected"} <= set(shape["properties"])


def test_no_route_keeps_fastapis_validation_error_shape(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_metrics_are_documented_and_served_as_prometheus_text(
        document: dict[str, Any], admin: httpx.Client) -> None:
    ok = document["paths"]["/metrics"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["text/plain"]
    answer = admin.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    assert "# HELP" in answer.text


def test_ids_carry_the_rule_in_bodies_and_paths(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    user = schemas["EventIn"]["properties"]["user"]
    assert (user["pattern"], user["maxLength"]) == (ID_PATTERN, MAX_ID_LENGTH)
    for path in ("/v1/users/{user_id}/recommendations", "/v1/items/{item_id}/similar",
                 "/v1/users/{user_id}"):
        for operation in document["paths"][path].values():
            [parameter] = [p for p in operation["parameters"] if p["in"] == "path"]
            assert parameter["schema"]["pattern"] == ID_PATTERN, path
            assert parameter["schema"]["maxLength"] == MAX_ID_LENGTH, path


def test_the_schema_is_served_without_a_key(server: Server) -> None:
    with server.client("") as anonymous:
        assert anonymous.get("/openapi.json").status_code == 200
