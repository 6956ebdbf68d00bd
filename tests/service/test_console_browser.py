"""The console in a real browser: Debian's Chromium driven by Playwright, against a real server.

Each test works the way an operator does (paste a key, click, read the page) and checks
what the page shows against the API's own answer. Each saves a screenshot of its page to
docs/console/, which docs/console.md shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._server import Server, ingest, wait_for
from .test_lifecycle import QUIET, TRAINING_TIMEOUT_S, finished, load_shop, post

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
PAGE_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A shop with its first champion, and a few rejected records for the quarantine."""
    server = Server(tmp_path_factory.mktemp("console"), QUIET).start()
    load_shop(server, seed=3)
    with server.client() as client:
        client.post("/v1/events", json={"events": [
            {"user": "u", "item": "i", "type": "teleport", "id": "bad-type"},
            {"user": "", "item": "i", "type": "view", "id": "bad-user"},
            {"item": "i", "type": "view", "id": "no-user"}]})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def drifting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A shop whose drift monitor has full windows to compare (its own server: a drift
    may trigger a training, which the other tests must not see)."""
    server = Server(tmp_path_factory.mktemp("drift"),
                    {**QUIET, "FRESHREC_DRIFT_WINDOW": "1000"}).start()
    load_shop(server, seed=4)
    yield server
    server.stop()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage); fails the test on any JavaScript error."""
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(PAGE_TIMEOUT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def log_in(page: Any, server: Server, key: str | None = None) -> None:
    page.goto(f"{server.url}/console/")
    page.fill("#key-input", key or server.admin_key)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#shell", state="visible")


def open_page(page: Any, server: Server, route: str) -> None:
    page.goto(f"{server.url}/console/#/{route}")
    page.wait_for_selector("#shell", state="visible")


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))  # the window: small files


def wait_for_number(page: Any, selector: str, at_least: float) -> None:
    """Until the number shown in ``selector`` reaches ``at_least`` (the page polls)."""
    page.wait_for_function(
        "([selector, wanted]) => {"
        "  const node = document.querySelector(selector);"
        "  return node && Number(node.textContent.replace(/,/g, '')) >= wanted; }",
        arg=[selector, at_least])


def shown_number(page: Any, selector: str) -> float:
    page.wait_for_function("s => /\\d/.test(document.querySelector(s)?.textContent ?? '')",
                           arg=selector)
    found = re.search(r"-?[\d,]+(\.\d+)?", page.inner_text(selector))
    assert found is not None
    return float(found.group(0).replace(",", ""))


def test_the_live_counters_move_while_events_are_posted(console_server: Server,
                                                        page: Any) -> None:
    log_in(page, console_server)
    events = '[data-stat="events_total"] .value'
    served = '[data-stat="recommendations_total"] .value'
    events_before = shown_number(page, events)
    served_before = shown_number(page, served)
    with console_server.client() as client:
        for batch in range(3):
            ingest(client, [{"user": f"live-{n % 7}", "item": f"sku-{n % 50:05d}",
                             "type": "view", "id": f"live-{batch}-{n}"} for n in range(100)])
        for n in range(5):
            assert client.get(f"/v1/users/live-{n}/recommendations").status_code == 200
    wait_for_number(page, events, events_before + 300)
    wait_for_number(page, served, served_before + 5)
    wait_for_number(page, '[data-stat="events_per_s"] .value', 0.1)
    # The worker table names the process that answered; the charts can show it alone.
    assert page.locator("tr[data-worker]").count() == 1
    page.select_option("#live-worker", "0")
    wait_for_number(page, '[data-stat="events_total"] .value', events_before + 300)
    screenshot(page, "live")


def test_nobody_without_a_key_sees_data(console_server: Server, chromium: Any) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(PAGE_TIMEOUT_MS)
    answered: list[tuple[str, int]] = []
    tab.on("response", lambda response: answered.append((response.url, response.status)))
    try:
        with console_server.client() as client:
            catalog = client.get("/v1/trending", params={"k": 5}).json()["items"]
        tab.goto(f"{console_server.url}/console/#/users/user-00001")
        tab.wait_for_selector("#login-form", state="visible")
        assert tab.locator("#shell").is_hidden()
        text = tab.inner_text("body")
        assert all(item["id"] not in text for item in catalog)
        assert "m0001" not in text and "user-00001" not in text
        # Without a key the page asks the API nothing.
        assert not [url for url, _ in answered if "/v1/" in url]

        tab.fill("#key-input", "frk_not-a-key")
        tab.click("#login-form button[type=submit]")
        tab.wait_for_function("() => document.querySelector('#login-error').textContent")
        assert "unknown or revoked API key" in tab.inner_text("#login-error")
        assert tab.locator("#shell").is_hidden()
        assert tab.evaluate("() => sessionStorage.length") == 0
        assert [status for url, status in answered if "/v1/" in url] == [401]
        screenshot(tab, "login")
    finally:
        context.close()


def test_a_read_key_sees_but_cannot_act(console_server: Server, page: Any) -> None:
    log_in(page, console_server, console_server.create_key("read"))
    assert page.inner_text("#who").endswith("read")
    shown_number(page, '[data-stat="events_total"] .value')
    open_page(page, console_server, "models")
    # The model list is an admin route: the page says so instead of showing nothing.
    page.wait_for_selector("#page-models .notice.error")
    assert "needs an admin key" in page.inner_text("#page-models")
    # Experiments are readable, but starting one is an admin's act: the button says so.
    open_page(page, console_server, "experiments")
    start = page.locator("#experiment-start-button")
    start.wait_for()
    assert start.is_disabled() and start.get_attribute("title") == "needs an admin key"


def test_a_users_page_lists_the_recommendations_the_api_answers(console_server: Server,
                                                                 page: Any) -> None:
    [(user,)] = console_server.query(
        "SELECT user FROM events GROUP BY user ORDER BY count(*) DESC LIMIT 1")
    log_in(page, console_server)
    open_page(page, console_server, f"users/{user}")
    rows = "#page-users tr[data-item]"
    page.wait_for_selector(rows)
    with console_server.client() as client:
        answer = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}).json()
    listed = page.locator(rows).evaluate_all("rows => rows.map(row => row.dataset.item)")
    assert listed == [item["id"] for item in answer["items"]]
    cells = page.locator(rows).evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.textContent))")
    for (_, _, score, source, _), item in zip(cells, answer["items"], strict=True):
        assert float(score) == pytest.approx(item["score"], abs=1e-4)
        assert source == item["source"]
    assert answer["items"] and answer["model"] in page.inner_text("#page-users")
    assert {item["source"] for item in answer["items"]} != {"trending"}  # a known user
    screenshot(page, "users")


def test_rolling_back_with_the_button_serves_the_old_version(console_server: Server,
                                                              page: Any) -> None:
    with console_server.client() as client:
        old = client.get("/v1/monitoring").json()["model"]
        new = post(client, "/v1/models/train", {}).json()["version"]
        wait_for(lambda: finished(client, new), timeout=TRAINING_TIMEOUT_S,
                 message="a second candidate")
        post(client, f"/v1/models/{new}/promote", {})
    log_in(page, console_server)
    open_page(page, console_server, "models")
    page.wait_for_selector(f"#serving-model:text-is('{new}')")

    page.click("#rollback")  # asked first; cancelling changes nothing
    page.wait_for_selector("#confirm", state="visible")
    page.click("#confirm button[value=cancel]")
    with console_server.client() as client:
        assert served_model(client) == new

    page.click("#rollback")
    page.click("#confirm-ok")
    page.wait_for_selector("#page-models .notice.ok")
    with console_server.client() as client:
        assert served_model(client) == old
    page.wait_for_selector(f"#serving-model:text-is('{old}')")
    screenshot(page, "models")


def served_model(client: httpx.Client) -> str:
    return str(client.get("/v1/users/user-00002/recommendations").json()["model"])


def test_an_experiment_is_started_read_and_stopped_in_the_console(console_server: Server,
                                                                  page: Any) -> None:
    log_in(page, console_server)
    open_page(page, console_server, "experiments")
    page.wait_for_selector("#shadows table")  # the shadow models' list, from /v1/shadow
    form = page.locator("#experiment-start")
    form.locator("[name=name]").fill("console: m0001 against the champion")
    form.locator("[name=arm-model]").nth(1).fill("m0001")
    page.click("#experiment-start-button")
    page.wait_for_url(re.compile(r"#/experiments/.+"))
    page.wait_for_selector("#experiment-status:text-is('running')")
    experiment = page.url.rsplit("/", 1)[1]
    with console_server.client() as client:
        shown = client.get(f"/v1/experiments/{experiment}").json()
        assert shown["status"] == "running"
        assert [arm["model"] for arm in shown["arms"]] == ["champion", "m0001"]
        answer = client.get("/v1/users/user-00004/recommendations").json()
        assert answer["experiment"]["id"] == experiment
        for n in range(30):
            client.get(f"/v1/users/user-{n:05d}/recommendations")

        def counted() -> dict[str, Any] | None:
            shown = client.get(f"/v1/experiments/{experiment}").json()
            return shown if sum(arm["requests"] for arm in shown["arms"]) >= 30 else None

        # The leader counts the served lists from the log in the background.
        counted_now = wait_for(counted, timeout=120, interval=0.5,
                               message="the experiment's requests counted")
    page.reload()
    page.wait_for_selector("tr[data-arm]")
    for arm in counted_now["arms"]:
        cells = page.locator(f'tr[data-arm="{arm["name"]}"] td').all_inner_texts()
        assert cells[1] == arm["model"]
        assert int(cells[4].replace(",", "")) >= arm["requests"] > 0  # requests
    assert page.inner_text("#experiment-decision")
    screenshot(page, "experiments")

    page.click("#experiment-stop")
    page.click("#confirm-ok")
    page.wait_for_selector("#experiment-status:text-is('stopped')")
    with console_server.client() as client:
        assert client.get(f"/v1/experiments/{experiment}").json()["status"] == "stopped"
        assert "experiment" not in client.get("/v1/users/user-00004/recommendations").json()


@pytest.mark.parametrize(("route", "shows"), [
    ("quality", "#page-quality table"),
    ("items/sku-00001", '#page-items [data-chart="events on this item"]'),
])
def test_the_insight_pages_show_their_data(console_server: Server, page: Any, route: str,
                                           shows: str) -> None:
    log_in(page, console_server)
    open_page(page, console_server, route)
    page.wait_for_selector(f"{shows}, .notice.error")
    assert page.locator(".notice.error").count() == 0, page.inner_text("#page")
    if route.startswith("items/"):  # the similar items are those the API answers
        with console_server.client() as client:
            similar = client.get(f"/v1/{route}/similar").json()["items"]
        listed = page.locator("#page-items tr[data-item]").evaluate_all(
            "rows => rows.map(row => row.dataset.item)")
        assert listed == [item["id"] for item in similar] and listed
    screenshot(page, route.split("/")[0])


def test_the_quarantine_page_counts_by_reason_and_searches(console_server: Server,
                                                           page: Any) -> None:
    log_in(page, console_server)
    open_page(page, console_server, "quarantine")
    page.wait_for_selector("#quarantine-total")
    assert page.locator(".notice.error").count() == 0, page.inner_text("#page")
    assert shown_number(page, "#quarantine-total") >= 3
    page.fill("#quarantine-search [name=q]", "teleport")
    page.click("#quarantine-search button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#quarantine-total')?.textContent.startsWith('1 ')")
    assert "teleport" in page.inner_text("#quarantine-results table")
    screenshot(page, "quarantine")


def test_the_drift_page_shows_each_signal_against_its_reference(drifting_server: Server,
                                                                page: Any) -> None:
    with drifting_server.client() as client:
        drift = client.get("/v1/console/drift").json()
    log_in(page, drifting_server)
    open_page(page, drifting_server, "drift")
    page.wait_for_selector("#page-drift [data-signal]")
    assert page.locator(".notice.error").count() == 0, page.inner_text("#page")
    shown = page.locator("[data-signal]").evaluate_all("cards => cards.map(c => c.dataset.signal)")
    assert shown == [signal["name"] for signal in drift["signals"]]
    screenshot(page, "drift")
