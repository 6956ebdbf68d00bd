"""What ingest accepts can be read back: property tests over generated ids, on the real server.

For each generated user and item id, a user views the item and a companion item.
Whatever the server accepts must come back: the user's recommendations leave out
what they saw, the item's similar items hold the companion, the stored rows carry
the id exactly as sent, and erasing the user finds exactly their events. Whatever
it refuses must come back with a per-record reason naming the field.
"""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from freshrec.ids import MAX_ID_LENGTH, id_problem

from ._server import Server, recommended

# Any text JSON can carry (no lone surrogates), biased towards what breaks paths, and
# half the time framed by letters so that both ids of an example are often accepted.
TRICKY = st.sampled_from(["/", "#", "?", "%", "%2F", " ", ".", "..", "\n", "\t", "\x00",
                          "\x7f", "\x85", "\u3000", "\u2028", "\ufeff", "é", "用", "😀"])
ANY_TEXT = st.characters(codec="utf-8")
MIXED = st.lists(st.one_of(TRICKY, st.text(ANY_TEXT, max_size=3)), max_size=6).map("".join)
LETTER = st.characters(min_codepoint=ord("a"), max_codepoint=ord("z"))
PRINTABLE = st.characters(codec="utf-8", exclude_categories=["Cc"])
IDS = st.one_of(
    st.tuples(LETTER, st.lists(st.one_of(TRICKY, PRINTABLE), max_size=8).map("".join),
              LETTER).map("".join),
    st.text(ANY_TEXT, max_size=12),
    MIXED,
    st.text(ANY_TEXT, min_size=MAX_ID_LENGTH - 2, max_size=MAX_ID_LENGTH + 2),
)
_companions = itertools.count()


def path(text: str) -> str:
    return quote(text, safe="")


def rejected_reasons(body: dict[str, Any]) -> dict[int, str]:
    return {entry["index"]: entry["error"] for entry in body["rejected"]}


@settings(max_examples=50, deadline=None, database=None)
@given(user=IDS, item=IDS)
@example(user="line\nbreak", item="round-trip-i")
@example(user="round trip/#1 é", item="round-trip/item?x=1")
@example(user=" padded", item="..")
def test_every_accepted_id_reads_back_and_every_refused_one_says_why(
        server: Server, admin: httpx.Client, user: str, item: str) -> None:
    companion = f"round-trip-companion-{next(_companions)}"
    events = [{"user": user, "item": item, "type": "view"},
              {"user": user, "item": companion, "type": "view"}]
    answer = admin.post("/v1/events", json={"events": events})
    assert answer.status_code in (200, 422), answer.text
    body = answer.json()
    reasons = rejected_reasons(body)
    for index, reason in reasons.items():  # a refused record names the field and says why
        field, value = ("user", user) if id_problem(user) else ("item", events[index]["item"])
        assert reason == f"{field}: {id_problem(value)}", (user, item, reason)
    accepted = [event for index, event in enumerate(events) if index not in reasons]
    assert body["accepted"] == len(accepted)
    event(f"{len(accepted)} of 2 records accepted")  # --hypothesis-show-statistics
    if not accepted:
        assert answer.status_code == 422 and body["error"].startswith("no record was accepted")
        return

    # Stored exactly as sent, and found again through the paths.
    stored = server.query("SELECT item FROM events WHERE user = ?", user)
    assert sorted(row[0] for row in stored) == sorted(event["item"] for event in accepted)
    seen = {event["item"] for event in accepted}
    assert not seen & set(recommended(admin, path(user), k=500))
    if item in seen:
        similar = admin.get(f"/v1/items/{path(item)}/similar", params={"k": 500})
        assert similar.status_code == 200, similar.text
        assert companion in [entry["id"] for entry in similar.json()["items"]]
    erased = admin.delete(f"/v1/users/{path(user)}")
    assert erased.status_code == 200, erased.text
    assert erased.json() == {"user": user, "events_erased": len(accepted), "found": True}
    assert server.query("SELECT count(*) FROM events WHERE user = ?", user) == [(0,)]
