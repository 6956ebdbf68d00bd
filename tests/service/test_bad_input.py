"""Every class of bad input gets a 4xx JSON answer that says what is wrong.

Never a 500, never a traceback. A body that is not a batch at all is refused as a
whole; inside a batch each record is judged on its own, and a batch in which no
record was usable answers 422 with the per-record reasons.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ._server import Server

OK_EVENT = {"user": "bad-u", "item": "bad-i", "type": "view"}


def refused(answer: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    """Check an error answer: the status, JSON, a message holding every fragment."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert "Traceback" not in answer.text
    body = answer.json()
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    for fragment in fragments:
        assert fragment in body["error"], body["error"]
    return dict(body)


@pytest.mark.parametrize(("body", "status", "fragment"), [
    (b"", 400, "the request body is empty"),
    (b"{bad json", 400, "malformed JSON"),
    (b'{"events": [}', 400, "malformed JSON"),
    (b'{"events": ["\xff"]}', 400, "malformed JSON: Invalid UTF-8"),
    (b"[" * 50_000, 400, "malformed JSON: nested too deeply"),
    (b'{"events": [{"value": 1e999}]}', 400, "malformed JSON: Number out of range"),
    (b"[]", 422, 'expected a JSON object like {"events": [...]}, got list'),
    (b'"events"', 422, "got str"),
    (b"null", 422, "got NoneType"),
    (b'{"event": []}', 422, 'missing field "events"'),
    (b'{"events": {"user": "u"}}', 422, '"events" must be a list, got dict'),
    (b'{"events": "u,i,view"}', 422, '"events" must be a list, got str'),
    (b'{"events": []}', 422, '"events" is empty'),
    (b'{"events": [{"user": "u", "item": "i", "type": "view"}], "atomic": true}', 422,
     "unknown field(s) 'atomic'"),
])
def test_a_body_that_is_not_a_batch_is_refused_whole(admin: httpx.Client, body: bytes,
                                                      status: int, fragment: str) -> None:
    refused(admin.post("/v1/events", content=body), status, fragment)


@pytest.mark.parametrize("route", ["/v1/items", "/v1/users"])
def test_catalog_routes_refuse_bad_bodies_alike(admin: httpx.Client, route: str) -> None:
    key = route.rsplit("/", 1)[1]
    refused(admin.post(route, content=b"{"), 400, "malformed JSON")
    refused(admin.post(route, json={key: []}), 422, f'"{key}" is empty')
    refused(admin.post(route, json={"events": [{"id": "x"}]}), 422, f'missing field "{key}"')


HUGE = "x" * 300
# (event record, fragment of the reason)
BAD_EVENTS: list[tuple[Any, str]] = [
    (5, "each event must be a JSON object, got int"),
    (["u", "i", "view"], "each event must be a JSON object, got list"),
    ({"item": "i", "type": "view"}, "user: is required"),
    ({"user": None, "item": "i", "type": "view"}, "user: is required"),
    ({"user": "u", "type": "view"}, "item: is required"),
    ({"user": "u", "item": "i"}, "type: is required"),
    ({"user": ["u"], "item": "i", "type": "view"}, "user: must be a string, got list"),
    ({"user": 1.5, "item": "i", "type": "view"}, "user: must be a string, got float"),
    ({"user": True, "item": "i", "type": "view"}, "user: must be a string, got bool"),
    ({"user": "", "item": "i", "type": "view"}, "user: must not be empty"),
    ({"user": "  ", "item": "i", "type": "view"}, "user: starts or ends with whitespace"),
    ({"user": "u ", "item": "i", "type": "view"}, "user: starts or ends with whitespace"),
    ({"user": "line\nbreak", "item": "i", "type": "view"},
     "user: holds a control character ('\\n'), which a URL path cannot carry back"),
    ({"user": "u", "item": "tab\there", "type": "view"}, "item: holds a control character"),
    ({"user": "u", "item": "\u3000i", "type": "view"}, "item: starts or ends with whitespace"),
    ({"user": "..", "item": "i", "type": "view"}, "user: is '..', which HTTP clients resolve"),
    ({"user": "u", "item": "i", "type": "view", "session": "s\x00"},
     "session: holds a control character"),
    ({"user": "u", "item": {"id": "i"}, "type": "view"}, "item: must be a string, got dict"),
    ({"user": "u", "item": "i", "type": "wink"}, "type: unknown event type 'wink' (known: "),
    ({"user": "u", "item": "i", "type": "VIEW"}, "unknown event type 'VIEW'"),
    ({"user": "u", "item": "i", "type": "rating"}, "value: a rating event needs a numeric value"),
    ({"user": "u", "item": "i", "type": "rating", "value": "5"},
     "value: must be a number, got str"),
    ({"user": "u", "item": "i", "type": "view", "value": True}, "value: must be a number"),
    ({"user": HUGE, "item": "i", "type": "view"}, "user: is longer than 256 characters"),
    ({"user": "u", "item": HUGE, "type": "view"}, "item: is longer than 256 characters"),
    ({"user": "u", "item": "i", "type": HUGE}, "type: is longer than 256 characters"),
    ({"user": "u", "item": "i", "type": "view", "id": HUGE}, "id: is longer than 256"),
    ({"user": "u", "item": "i", "type": "view", "session": HUGE}, "session: is longer than 256"),
    ({"user": "u", "item": "i", "type": "view", "timestamp": "yesterday"},
     "timestamp: 'yesterday' is not an ISO 8601 date-time"),
    ({"user": "u", "item": "i", "type": "view", "timestamp": 1.7e12},
     "timestamp: is out of range"),
    ({"user": "u", "item": "i", "type": "view", "timestamp": -1}, "timestamp: is out of range"),
    ({"user": "u", "item": "i", "type": "view", "timestamp": "3500-01-01T00:00:00Z"},
     "timestamp: is out of range"),
    ({"user": "u", "item": "i", "type": "view", "timestamp": True}, "timestamp: must be seconds"),
    ({"user": "u", "item": "i", "type": "view", "timestamp": [2024]},
     "timestamp: must be seconds"),
    ({"user": "u", "item": "i", "type": "view", "usr": "u"}, "unknown field(s) 'usr'"),
    ({"user": "u", "item": "i", "type": "view", "properties": {}}, "unknown field(s) 'properties'"),
]


@pytest.mark.parametrize(("record", "fragment"), BAD_EVENTS,
                         ids=[fragment[:40] for _, fragment in BAD_EVENTS])
def test_a_batch_of_only_bad_events_is_422_with_the_reason(
        admin: httpx.Client, record: Any, fragment: str) -> None:
    body = refused(admin.post("/v1/events", json={"events": [record]}), 422,
                   "no record was accepted: record 0: ", fragment)
    assert body["accepted"] == 0 and body["duplicates"] == 0
    assert [r["index"] for r in body["rejected"]] == [0]
    assert fragment in body["rejected"][0]["error"]
    assert len(body["error"]) < 1000, "a message must not echo a huge input"


@pytest.mark.parametrize(("record", "fragment"), BAD_EVENTS,
                         ids=[fragment[:40] for _, fragment in BAD_EVENTS])
def test_a_bad_event_next_to_a_good_one_is_reported_by_index(
        admin: httpx.Client, record: Any, fragment: str) -> None:
    answer = admin.post("/v1/events", json={"events": [OK_EVENT, record]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1]
    assert fragment in body["rejected"][0]["error"]


BAD_ITEMS: list[tuple[Any, str]] = [
    ({"title": "no id"}, "id: is required"),
    ({"id": "i", "categories": "shoes"}, "categories: must be a list of strings"),
    ({"id": "i", "categories": [1]}, "categories: each category must be a non-empty string"),
    ({"id": "i", "categories": [f"c{n}" for n in range(65)]}, "at most 64 categories"),
    ({"id": "i", "title": 5}, "title: must be a string, got int"),
    ({"id": "i", "text": "x" * 20_001}, "text: is longer than 20000 characters"),
    ({"id": "i", "properties": [1]}, "properties: must be a JSON object"),
    ({"id": "i", "properties": {"size": {"eu": 42}}}, "value of 'size' must be a string"),
    ({"id": "i", "properties": {"note": "x" * 20_001}}, "value of 'note' is longer than"),
    ({"id": "i", "available": "yes"}, "available: must be true or false"),
    ({"id": "i", "price": 3}, "unknown field(s) 'price'"),
]


@pytest.mark.parametrize(("record", "fragment"), BAD_ITEMS,
                         ids=[fragment[:40] for _, fragment in BAD_ITEMS])
def test_bad_items_are_refused_with_the_reason(admin: httpx.Client, record: Any,
                                               fragment: str) -> None:
    body = refused(admin.post("/v1/items", json={"items": [record]}), 422, fragment)
    assert body["accepted"] == 0


@pytest.mark.parametrize(("record", "fragment"), [
    ({"properties": {}}, "id: is required"),
    ({"id": "u", "properties": "vip"}, "properties: must be a JSON object"),
    ({"id": "u", "name": "Ann"}, "unknown field(s) 'name'"),
])
def test_bad_users_are_refused_with_the_reason(admin: httpx.Client, record: Any,
                                               fragment: str) -> None:
    refused(admin.post("/v1/users", json={"users": [record]}), 422, fragment)


@pytest.mark.parametrize(("body", "status", "fragment"), [
    (b"", 400, "the request body is empty"),
    (b"{bad", 400, "malformed JSON"),
    (b"[1]", 422, "the request body must be a JSON object"),
    (b'{"recent_items": "a,b"}', 422, "recent_items: Input should be a valid list"),
    (b'{"recent_items": [1]}', 422, "recent_items.0: Input should be a valid string"),
    (b'{"recent_items": ["a"], "k": 0}', 422, "k: Input should be greater than or equal to 1"),
    (b'{"recent_items": ["a"], "k": "ten"}', 422, "k: Input should be a valid integer"),
    (b'{"recent_items": ["a"], "kk": 3}', 422, "kk: Extra inputs are not permitted"),
    (b'{"k": 3}', 422, "recent_items: Field required"),
])
def test_session_requests_refuse_bad_bodies(admin: httpx.Client, body: bytes, status: int,
                                            fragment: str) -> None:
    answer = admin.post("/v1/recommendations", content=body,
                        headers={"content-type": "application/json"})
    refused(answer, status, fragment)


@pytest.mark.parametrize(("path", "fragment"), [
    ("/v1/trending?k=0", "query.k: Input should be greater than or equal to 1"),
    ("/v1/trending?k=501", "query.k: Input should be less than or equal to 500"),
    ("/v1/trending?k=ten", "query.k: Input should be a valid integer"),
    ("/v1/users/bad-u/recommendations?k=-1", "query.k"),
    ("/v1/users/bad-u/recommendations?exclude_seen=maybe", "query.exclude_seen"),
    ("/v1/items/bad-i/similar?k=100000", "query.k"),
    ("/v1/users/bad-u/recommendations?exclude=" + ",".join(f"i{n}" for n in range(1001)),
     "exclude lists at most 1000 items"),
    (f"/v1/users/{'u' * 300}/recommendations",
     "the id in the path is longer than 256 characters"),
    ("/v1/users/%20/recommendations", "the id in the path starts or ends with whitespace"),
    ("/v1/users/a%09b/recommendations", "the id in the path holds a control character"),
    ("/v1/items/%2E%2E/similar", "the id in the path is '..'"),
    ("/v1/quarantine?limit=0", "query.limit"),
    # Past SQLite's 64-bit integers: an OverflowError and a 500 before the bound.
    ("/v1/quarantine?limit=472&offset=55725823648516232334802944", "query.offset"),
    ("/v1/models?status=best", "query.status: Input should be 'candidate'"),
])
def test_bad_query_and_path_values_are_422(admin: httpx.Client, path: str,
                                           fragment: str) -> None:
    refused(admin.get(path), 422, fragment)


def test_unknown_routes_and_methods_answer_json(admin: httpx.Client) -> None:
    refused(admin.get("/v1/nothing"), 404, "no such route")
    refused(admin.put("/v1/events", json={}), 405, "method not allowed")


# -- limits: a server with a small batch and body size -------------------------------

MAX_BATCH = 10
MAX_BODY = 4096


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("limits"), {
        "FRESHREC_MAX_BATCH": str(MAX_BATCH), "FRESHREC_MAX_BODY_BYTES": str(MAX_BODY),
        "FRESHREC_MAX_K": "20"}).start()
    yield running
    running.stop()


@pytest.fixture
def limited_admin(limited: Server) -> Iterator[httpx.Client]:
    with limited.client() as client:
        yield client


def events(n: int, prefix: str, user: str = "lim-u") -> dict[str, Any]:
    return {"events": [{"user": user, "item": f"{prefix}{i}", "type": "view"}
                       for i in range(n)]}


def test_a_full_batch_is_accepted(limited_admin: httpx.Client) -> None:
    answer = limited_admin.post("/v1/events", json=events(MAX_BATCH, "full"))
    assert answer.status_code == 200 and answer.json()["accepted"] == MAX_BATCH


@pytest.mark.parametrize("route", ["/v1/events", "/v1/items", "/v1/users"])
def test_too_many_records_is_413(limited_admin: httpx.Client, route: str) -> None:
    key = route.rsplit("/", 1)[1]
    records = [{"user": "u", "item": f"i{i}", "type": "view"} if key == "events"
               else {"id": f"r{i}"} for i in range(MAX_BATCH + 1)]
    refused(limited_admin.post(route, json={key: records}), 413,
            f"too many records: {MAX_BATCH + 1} in one batch, the limit is {MAX_BATCH}")


def big_body(prefix: str = "big") -> bytes:
    """A batch within the record limit, with valid records, over the byte limit."""
    records = events(MAX_BATCH, prefix + "q" * 240, user="u" * 250)
    body = httpx.Request("POST", "/", json=records).content
    assert len(body) > MAX_BODY
    return body


def test_a_body_over_the_limit_is_413(limited_admin: httpx.Client) -> None:
    body = refused(limited_admin.post("/v1/events", content=big_body()), 413,
                   f"request body larger than {MAX_BODY} bytes")
    assert "split it into smaller batches" in body["error"]


def test_a_streamed_body_over_the_limit_is_413(limited_admin: httpx.Client) -> None:
    data = big_body()

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for start in range(0, len(data), 1000):
            yield data[start:start + 1000]

    request = limited_admin.build_request("POST", "/v1/events", content=chunks())
    assert "content-length" not in request.headers
    refused(limited_admin.send(request), 413, f"request body larger than {MAX_BODY} bytes")


def test_a_session_request_over_the_limit_is_413(limited_admin: httpx.Client) -> None:
    body = {"recent_items": ["x" * 100] * 100}
    refused(limited_admin.post("/v1/recommendations", json=body), 413, "request body larger")


def test_nothing_of_a_refused_body_is_stored(limited: Server,
                                             limited_admin: httpx.Client) -> None:
    assert limited_admin.post("/v1/events", content=big_body("huge")).status_code == 413
    assert limited_admin.post("/v1/events", json=events(MAX_BATCH + 1, "many")).status_code \
        == 413
    items = {item for (item,) in limited.query("SELECT item FROM events")}
    assert items and not any(item.startswith(("huge", "many")) for item in items)


def test_max_k_comes_from_the_settings(limited_admin: httpx.Client) -> None:
    refused(limited_admin.get("/v1/trending", params={"k": 21}), 422,
            "less than or equal to 20")
    assert limited_admin.get("/v1/trending", params={"k": 20}).status_code == 200
