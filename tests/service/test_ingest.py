"""Ingest over HTTP: mixed batches, the quarantine, duplicates, items and users."""

from __future__ import annotations

from typing import Any

import httpx

from ._server import Server, ingest


def quarantined(client: httpx.Client, marker: str) -> list[dict[str, Any]]:
    """Quarantine entries whose raw record mentions ``marker``, newest first."""
    found, offset = [], 0
    while True:
        page = client.get("/v1/quarantine", params={"limit": 1000, "offset": offset})
        assert page.status_code == 200, page.text
        records = page.json()["records"]
        found += [r for r in records if marker in r["raw"]]
        if len(records) < 1000:
            return found
        offset += 1000


def test_a_mixed_batch_stores_the_good_and_quarantines_the_bad(server: Server,
                                                              admin: httpx.Client) -> None:
    batch = [
        {"id": "mix-1", "user": "mix-u", "item": "mix-a", "type": "view"},
        {"id": "mix-2", "user": "mix-u", "item": "mix-b", "type": "wink"},
        {"id": "mix-3", "user": "mix-u", "item": "mix-c", "type": "purchase",
         "timestamp": "2024-05-01T12:00:00Z"},
        {"id": "mix-4", "user": "mix-u", "item": "mix-d", "type": "rating"},
        "mix-5 is not an object",
        {"id": "mix-6", "user": "mix-u", "item": "mix-e", "type": "rating", "value": 4.5,
         "session": "s1"},
    ]
    answer = admin.post("/v1/events", json={"events": batch})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == 3 and body["duplicates"] == 0
    assert [(r["index"], r["error"].split(":")[0]) for r in body["rejected"]] == [
        (1, "type"), (3, "value"), (4, "each event must be a JSON object, got str")]

    stored = {row[0]: row[1:] for row in server.query(
        "SELECT id, item, type, value, timestamp, session FROM events WHERE user = 'mix-u'")}
    assert stored == {"mix-1": ("mix-a", "view", None, stored["mix-1"][3], None),
                      "mix-3": ("mix-c", "purchase", None, 1714564800.0, None),
                      "mix-6": ("mix-e", "rating", 4.5, stored["mix-6"][3], "s1")}

    entries = quarantined(admin, "mix-")
    reasons = {entry["raw"]: entry["reason"] for entry in entries}
    assert reasons == {
        '"mix-5 is not an object"': "each event must be a JSON object, got str",
        '{"id":"mix-4","user":"mix-u","item":"mix-d","type":"rating"}':
            "value: a rating event needs a numeric value",
        '{"id":"mix-2","user":"mix-u","item":"mix-b","type":"wink"}':
            body["rejected"][0]["error"],
    }
    assert {entry["kind"] for entry in entries} == {"event"}
    assert entries[0]["raw"] == '"mix-5 is not an object"'  # newest first


def test_the_quarantine_pages_and_counts(admin: httpx.Client) -> None:
    for n in range(3):
        admin.post("/v1/items", json={"items": [{"id": f"qpage-{n}", "available": "no"}]})
    first = admin.get("/v1/quarantine", params={"limit": 2}).json()
    second = admin.get("/v1/quarantine", params={"limit": 2, "offset": 2}).json()
    assert first["total"] == second["total"] >= 3
    assert [r["raw"] for r in first["records"]] == [
        '{"id":"qpage-2","available":"no"}', '{"id":"qpage-1","available":"no"}']
    assert second["records"][0]["raw"] == '{"id":"qpage-0","available":"no"}'
    assert first["records"][0]["kind"] == "item"
    assert first["records"][0]["id"] > second["records"][0]["id"]
    last = admin.get("/v1/quarantine", params={"offset": 2**63 - 1})
    assert last.status_code == 200, last.text
    assert last.json() == {"total": first["total"], "records": []}


def test_quarantined_raw_text_is_bounded(admin: httpx.Client) -> None:
    huge = {"user": "qhuge-u", "item": "i", "type": "view", "note": "x" * 50_000}
    assert admin.post("/v1/events", json={"events": [huge]}).status_code == 422
    (entry,) = quarantined(admin, "qhuge-u")
    assert len(entry["raw"].encode()) <= 10_000
    assert entry["reason"].startswith("unknown field(s) 'note'")


def event(n: int | str, user: str = "dup-u", **fields: Any) -> dict[str, Any]:
    return {"id": f"dup-{n}", "user": user, "item": f"dup-item-{n}", "type": "view", **fields}


def test_the_same_id_twice_in_one_batch_is_one_event(server: Server,
                                                     admin: httpx.Client) -> None:
    answer = ingest(admin, [event("one"), event("one", user="dup-other")])
    assert (answer["accepted"], answer["duplicates"]) == (1, 1)
    assert server.query("SELECT user FROM events WHERE id = 'dup-one'") == [("dup-u",)]


def test_an_id_seen_in_an_earlier_batch_is_a_duplicate(server: Server,
                                                       admin: httpx.Client) -> None:
    assert ingest(admin, [event("a"), event("b")])["accepted"] == 2
    answer = ingest(admin, [event("b", type="purchase"), event("c")])
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (1, 1, [])
    assert server.query("SELECT type FROM events WHERE id = 'dup-b'") == [("view",)]


def test_a_retried_batch_stores_nothing_twice(server: Server, admin: httpx.Client) -> None:
    batch = [event(f"retry-{n}") for n in range(20)]
    assert ingest(admin, batch) == {"accepted": 20, "duplicates": 0, "rejected": []}
    position = admin.get("/readyz").json()["events"]
    assert ingest(admin, batch) == {"accepted": 0, "duplicates": 20, "rejected": []}
    assert admin.get("/readyz").json()["events"] == position  # nothing new was applied
    assert server.query("SELECT count(*) FROM events WHERE id LIKE 'dup-retry-%'") == [(20,)]


def test_a_retry_of_a_mixed_batch_reports_the_same_rejections(admin: httpx.Client) -> None:
    batch = [event("mixed-retry"), {"user": "dup-u", "item": "x", "type": "wink"}]
    first, second = ingest(admin, batch), ingest(admin, batch)
    assert (first["accepted"], first["duplicates"]) == (1, 0)
    assert (second["accepted"], second["duplicates"]) == (0, 1)
    assert first["rejected"] == second["rejected"] != []


def test_events_without_an_id_are_never_duplicates(server: Server,
                                                   admin: httpx.Client) -> None:
    anonymous = {"user": "dup-anon", "item": "dup-anon-item", "type": "view"}
    assert ingest(admin, [anonymous, anonymous])["accepted"] == 2
    assert ingest(admin, [anonymous])["accepted"] == 1
    assert server.query("SELECT count(*) FROM events WHERE user = 'dup-anon'") == [(3,)]


def test_items_are_upserted_whole(server: Server, admin: httpx.Client) -> None:
    first = {"id": "up-1", "title": "Tea", "categories": ["drinks"], "properties": {"g": 100}}
    answer = admin.post("/v1/items", json={"items": [first, {"id": "up-2"}]})
    assert answer.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    answer = admin.post("/v1/items", json={"items": [{"id": "up-1", "title": "Green tea"}]})
    assert answer.json()["accepted"] == 1
    (data,) = server.query("SELECT data FROM items WHERE id = 'up-1'", database="catalog")[0]
    assert b"Green tea" in data and b"drinks" not in data


def test_users_are_stored_with_their_attributes(server: Server, admin: httpx.Client) -> None:
    users = [{"id": "attr-u1", "properties": {"country": "FR", "vip": True}}, {"id": "attr-u2"}]
    answer = admin.post("/v1/users", json={"users": users})
    assert answer.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    rows = dict(server.query("SELECT id, data FROM users WHERE id LIKE 'attr-%'",
                             database="catalog"))
    assert set(rows) == {"attr-u1", "attr-u2"} and b'"country":"FR"' in rows["attr-u1"]


def test_a_mixed_item_batch_quarantines_the_bad_ones(admin: httpx.Client) -> None:
    answer = admin.post("/v1/items", json={"items": [{"id": "qitem-ok"},
                                                     {"id": "qitem-bad", "categories": "x"}]})
    assert answer.status_code == 200
    assert answer.json()["rejected"] == [
        {"index": 1, "error": "categories: must be a list of strings"}]
    (entry,) = quarantined(admin, "qitem-bad")
    assert entry["kind"] == "item"
