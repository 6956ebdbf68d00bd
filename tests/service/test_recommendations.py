"""Serving over HTTP: live learning, new items, trending, sessions, filters.

The catalog is small and the events are chosen so co-occurrence makes the answer
predictable: five users view ``A`` then ``B``, five others view ``C`` then ``D``.
A newcomer who views ``A`` must be offered ``B`` as soon as the event is acked.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from ._server import Server, ingest, recommended

CATEGORY = {"A": "rec-cat-1", "B": "rec-cat-1", "C": "rec-cat-2", "D": "rec-cat-2",
            "E": "rec-cat-2", "F": "rec-cat-3"}


def item(name: str) -> str:
    return f"rec-{name}"


@pytest.fixture(scope="module")
def catalog(server: Server) -> None:
    with server.client() as admin:
        items = [{"id": item(name), "title": f"Item {name}", "categories": [category]}
                 for name, category in CATEGORY.items()]
        assert admin.post("/v1/items", json={"items": items}).status_code == 200
        events = []
        for user in range(5):
            for name in ("A", "B"):
                events.append({"user": f"rec-ab-{user}", "item": item(name), "type": "view"})
            for name in ("C", "D"):
                events.append({"user": f"rec-cd-{user}", "item": item(name), "type": "view"})
        assert ingest(admin, events)["accepted"] == 20


pytestmark = pytest.mark.usefixtures("catalog")


def answer_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = dict(response.json())
    assert set(body) == {"items", "model", "request_id"}
    for entry in body["items"]:
        assert set(entry) == {"id", "score", "source"}
        assert isinstance(entry["score"], float) and isinstance(entry["source"], str)
    return body


def test_a_recommendation_reflects_an_event_right_after_its_ack(admin: httpx.Client) -> None:
    before = recommended(admin, "rec-live-1", k=3)
    ingest(admin, [{"user": "rec-live-1", "item": item("A"), "type": "view"}])
    after = answer_of(admin.get("/v1/users/rec-live-1/recommendations", params={"k": 3}))
    assert after["items"][0]["id"] == item("B"), (before, after)
    assert after["items"][0]["source"] == "cooccurrence"
    # The next event moves the answer again, at once: D is what follows C.
    ingest(admin, [{"user": "rec-live-1", "item": item("C"), "type": "view"}])
    again = answer_of(admin.get("/v1/users/rec-live-1/recommendations", params={"k": 2}))
    sources = {e["id"]: e["source"] for e in again["items"]}
    assert set(sources) == {item("B"), item("D")}
    assert sources[item("D")] == "cooccurrence"


def test_an_unknown_user_gets_recommendations_not_an_error(admin: httpx.Client) -> None:
    body = answer_of(admin.get("/v1/users/rec-never-seen/recommendations", params={"k": 5}))
    assert len(body["items"]) == 5
    # Nothing personal is known about them: no ALS, co-occurrence, session or history.
    assert {entry["source"] for entry in body["items"]} <= {"trending", "popularity",
                                                             "content"}


def test_every_answer_has_its_own_request_id(admin: httpx.Client) -> None:
    ids = {answer_of(admin.get("/v1/trending"))["request_id"] for _ in range(3)}
    assert len(ids) == 3


def test_similar_items_come_from_co_occurrence(admin: httpx.Client) -> None:
    body = answer_of(admin.get(f"/v1/items/{item('A')}/similar", params={"k": 1}))
    assert [(e["id"], e["source"]) for e in body["items"]] == [(item("B"), "cooccurrence")]


def test_similar_items_without_co_occurrence_are_not_credited_to_it(
        admin: httpx.Client) -> None:
    body = answer_of(admin.get(f"/v1/items/{item('A')}/similar", params={"k": 4}))
    for entry in body["items"]:
        if entry["source"] == "cooccurrence":
            assert entry["score"] > 0, body["items"]


def test_an_unknown_item_has_no_similar_items(admin: httpx.Client) -> None:
    answer = admin.get("/v1/items/rec-nope/similar")
    assert answer.status_code == 404
    assert answer.json() == {"error": "unknown item 'rec-nope'", "status": 404}


def test_session_recommendations_follow_the_recent_items(admin: httpx.Client) -> None:
    body = answer_of(admin.post("/v1/recommendations",
                                json={"recent_items": [item("C")], "k": 2}))
    assert body["items"][0]["id"] == item("D")
    assert item("C") not in [entry["id"] for entry in body["items"]]  # seen by the session


def test_a_session_of_unknown_or_no_items_still_gets_an_answer(admin: httpx.Client) -> None:
    for recent in ([], ["rec-unknown-1", "rec-unknown-2"]):
        body = answer_of(admin.post("/v1/recommendations", json={"recent_items": recent,
                                                                 "k": 3}))
        assert len(body["items"]) == 3


def test_session_filters(admin: httpx.Client) -> None:
    body = answer_of(admin.post("/v1/recommendations", json={
        "recent_items": [item("C")], "k": 10, "exclude": [item("D")],
        "category": "rec-cat-2"}))
    assert [entry["id"] for entry in body["items"]] == [item("E")]
    body = answer_of(admin.post("/v1/recommendations", json={
        "recent_items": [item("C")], "k": 10, "category": "rec-cat-2", "exclude_seen": False}))
    assert {entry["id"] for entry in body["items"]} == {item("C"), item("D"), item("E")}


def test_trending_in_a_category(admin: httpx.Client) -> None:
    ingest(admin, [{"user": f"rec-trend-{n}", "item": item("E"), "type": "purchase"}
                   for n in range(3)])
    body = answer_of(admin.get("/v1/trending", params={"k": 10, "category": "rec-cat-2"}))
    ids = [entry["id"] for entry in body["items"]]
    assert ids[0] == item("E") and set(ids) == {item("C"), item("D"), item("E")}
    everywhere = [e["id"] for e in answer_of(admin.get("/v1/trending",
                                                       params={"k": 500}))["items"]]
    assert {item("A"), item("F")} <= set(everywhere)


def test_trending_in_an_unknown_category_is_empty(admin: httpx.Client) -> None:
    assert answer_of(admin.get("/v1/trending", params={"category": "rec-none"}))["items"] == []


def test_user_filters(admin: httpx.Client) -> None:
    ingest(admin, [{"user": "rec-filter", "item": item("A"), "type": "view"}])
    everything = recommended(admin, "rec-filter", k=500)
    assert item("A") not in everything  # exclude_seen is the default
    assert item("A") in recommended(admin, "rec-filter", k=500, exclude_seen="false")
    assert len(everything) < 500  # the whole catalog but A
    excluded = recommended(admin, "rec-filter", k=500, exclude=f"{item('B')}, {item('C')}")
    assert set(excluded) == set(everything) - {item("B"), item("C")}
    assert set(recommended(admin, "rec-filter", k=500, category="rec-cat-2")) == {
        item("C"), item("D"), item("E")}
    assert recommended(admin, "rec-filter", k=500, category="rec-cat-1") == [item("B")]


def test_a_new_item_is_recommendable_immediately(admin: httpx.Client) -> None:
    # A twin in text only (another category, no events): the new item's neighbour by content.
    twin = {"id": "rec-new-twin", "title": "Brass storm lantern", "categories": ["rec-cat-4"]}
    new = {"id": "rec-new", "title": "Brass storm lantern", "categories": ["rec-cat-new"]}
    assert admin.post("/v1/items", json={"items": [twin, new]}).json()["accepted"] == 2
    nearest = answer_of(admin.get("/v1/items/rec-new/similar", params={"k": 1}))["items"]
    assert [(entry["id"], entry["source"]) for entry in nearest] == [("rec-new-twin", "content")]
    trending = answer_of(admin.get("/v1/trending", params={"category": "rec-cat-new"}))
    assert [entry["id"] for entry in trending["items"]] == ["rec-new"]
    # Once people take it together with F, it follows F at once.
    ingest(admin, [{"user": f"rec-new-{n}", "item": name, "type": "view"}
                   for n in range(3) for name in (item("F"), "rec-new")])
    similar = answer_of(admin.get(f"/v1/items/{item('F')}/similar", params={"k": 1}))
    assert similar["items"][0]["id"] == "rec-new"
    session = answer_of(admin.post("/v1/recommendations",
                                   json={"recent_items": [item("F")], "k": 1}))
    assert session["items"][0]["id"] == "rec-new"


def test_an_unavailable_item_is_not_recommended(admin: httpx.Client) -> None:
    items = [{"id": "rec-gone", "categories": ["rec-cat-gone"]},
             {"id": "rec-stays", "categories": ["rec-cat-gone"]}]
    admin.post("/v1/items", json={"items": items})
    ingest(admin, [{"user": "rec-gone-u", "item": "rec-gone", "type": "purchase"}])
    trending = answer_of(admin.get("/v1/trending", params={"category": "rec-cat-gone"}))
    assert trending["items"][0]["id"] == "rec-gone"
    admin.post("/v1/items", json={"items": [{**items[0], "available": False}]})
    trending = answer_of(admin.get("/v1/trending", params={"category": "rec-cat-gone"}))
    assert [entry["id"] for entry in trending["items"]] == ["rec-stays"]
    shown = answer_of(admin.get("/v1/trending", params={"category": "rec-cat-gone",
                                                        "available_only": "false"}))
    assert "rec-gone" in [entry["id"] for entry in shown["items"]]


def test_ids_holding_a_slash_can_be_asked_about_and_erased(server: Server,
                                                           admin: httpx.Client) -> None:
    user, items = "rec/slash user", ["rec/slash/1", "rec/slash/2"]
    ingest(admin, [{"user": user, "item": name, "type": "view"} for name in items])
    path_user = quote(user, safe="")
    assert items[1] not in recommended(admin, path_user, k=500)  # seen
    similar = answer_of(admin.get(f"/v1/items/{quote(items[0], safe='')}/similar"))
    assert similar["items"][0]["id"] == items[1]
    answer = admin.delete(f"/v1/users/{path_user}")
    assert answer.json() == {"user": user, "events_erased": 2, "found": True}
    assert server.query("SELECT count(*) FROM events WHERE user = ?", user) == [(0,)]
