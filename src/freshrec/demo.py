"""``freshrec demo``: the real service on loopback, a generated shop streamed into it.

It starts ``freshrec serve`` in a child process (a temporary data directory, a
fresh admin key), posts a :class:`~freshrec.data.synthetic.ShopSimulator`
catalog over HTTP, streams the shop's events at a steady rate (new items as they
launch), and every few seconds shows what the service recommends to a few
watched users; it prints the console's address with the key, for a browser.
Training is set to start after a few seconds of events, so the model version
changes early; halfway through, every user's taste shifts.
"""

from __future__ import annotations

import secrets
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from freshrec.client import FreshrecClient
from freshrec.data.synthetic import (
    DEFAULT_FUNNEL,
    DEFAULT_VIEWS,
    ShopSimulator,
    expected_events_per_session,
)
from freshrec.local_server import LocalServer, free_port

BATCH_EVERY_S = 0.1
MAX_BATCH = 1000


def run_demo(seconds: float = 90.0, rate: float = 200.0, *, data_dir: Path | None = None,
             port: int = 8000, watch: int = 3, refresh_s: float = 3.0,
             console: Console | None = None) -> int:
    """Run the demo for ``seconds`` (0: until Ctrl-C); the exit code."""
    console = console or Console()
    key = "frk_" + secrets.token_urlsafe(32)
    with ExitStack() as stack:
        stack.enter_context(_sigterm_as_interrupt())
        folder = data_dir or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="freshrec-demo-")))
        folder.mkdir(parents=True, exist_ok=True)
        server = LocalServer.freshrec(folder, port=free_port(port), admin_key=key,
                                      env=training_settings(rate),
                                      log_path=folder / "server.log")
        console.print(f"[bold]freshrec demo[/]: starting the service on {server.url} "
                      f"(data and log in {folder})")
        try:
            stack.enter_context(server)
            client = stack.enter_context(FreshrecClient(server.url, key))
            shop = demo_shop(rate, seconds)
            client.post_items(shop.items(until=shop.start))
            print_examples(console, server.url, key, shop)
            print_console(console, server.url, key)
            stream(console, client, shop, seconds, rate, watch, refresh_s)
        except KeyboardInterrupt:
            console.print("interrupted")
        console.print("stopping the service...")
    console.print("done")
    return 0


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a process manager, ``timeout``) ends the demo as Ctrl-C does: the server
    is stopped and the temporary folder removed, instead of both outliving the demo."""

    def interrupt(*_: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanup
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def training_settings(rate: float) -> dict[str, str]:
    """First training after ~8 s of events, then one every ~20 s."""
    return {"FRESHREC_MIN_TRAIN_EVENTS": str(max(500, int(8 * rate))),
            "FRESHREC_RETRAIN_EVERY_EVENTS": str(max(2000, int(20 * rate)))}


def demo_shop(rate: float, seconds: float, seed: int = 7) -> ShopSimulator:
    """A shop whose sessions produce ``rate`` events/s in real time, launches and the
    taste shift falling inside the demo (``seconds``, or two minutes when unbounded)."""
    span = seconds or 120.0
    return ShopSimulator(
        n_users=300, n_items=400, seed=seed, start=time.time(),
        sessions_per_hour=rate * 3600 / expected_events_per_session(DEFAULT_VIEWS, DEFAULT_FUNNEL),
        seconds_between_events=1.0, launch_window=(0.1 * span, 0.9 * span),
        novelty_decay=span / 4, shift_at=span / 2,
    )


def stream(console: Console, client: FreshrecClient, shop: ShopSimulator, seconds: float,
           rate: float, watch: int, refresh_s: float) -> None:
    """Post events at ``rate`` in small batches; show recommendations every ``refresh_s``."""
    run = f"{int(shop.start)}"  # event ids unique per run, so a reused data dir learns again
    started = time.monotonic()
    sent, launched, shown_at, catalog_until = 0, 0, 0.0, shop.start
    users: Counter[str] = Counter()
    watched: list[str] = []
    previous: dict[str, set[str]] = {}
    live = Live(console=console, auto_refresh=False) if console.is_terminal else nullcontext()
    with live:
        while not seconds or time.monotonic() - started < seconds:
            elapsed = time.monotonic() - started
            due = min(int(rate * elapsed) - sent, MAX_BATCH)
            if due > 0:
                events = [msgspec.structs.replace(e, id=f"{run}-{e.id}")
                          for e in shop.next_events(due, now=time.time())]
                items = shop.launched_between(catalog_until, events[-1].timestamp)
                catalog_until = events[-1].timestamp
                if items:
                    client.post_items(items)
                    launched += len(items)
                client.post_events(events)
                sent += due
                users.update(e.user for e in events)
            if sent and elapsed - shown_at >= refresh_s:
                shown_at = elapsed
                watched = watched or [user for user, _ in users.most_common(watch)]
                view = render(client, shop, watched, previous,
                              f"{elapsed:4.0f}s · {sent:,} events "
                              f"({sent / max(elapsed, 1e-9):.0f}/s) · {launched} new items")
                if isinstance(live, Live):
                    live.update(view, refresh=True)
                else:
                    console.print(view)
            time.sleep(max(0.0, BATCH_EVERY_S - (time.monotonic() - started - elapsed)))


def render(client: FreshrecClient, shop: ShopSimulator, watched: list[str],
           previous: dict[str, set[str]], status: str) -> RenderableType:
    """One table per watched user; items new since the last look are marked."""
    tables: list[RenderableType] = []
    model = "?"
    for user in watched:
        answer: Any = client.recommendations(user, k=5)
        model = answer["model"]
        likes = ", ".join(shop.preferred_categories(user, shop.clock))
        table = Table(title=f"{user} (prefers {likes})", title_justify="left", min_width=60)
        for column in ("item", "category", "score", "source"):
            table.add_column(column)
        ids = [row["id"] for row in answer["items"]]
        for row in answer["items"]:
            fresh = user in previous and row["id"] not in previous[user]
            table.add_row(row["id"] + (" *" if fresh else ""), _category(shop, row["id"]),
                          f"{row['score']:.3f}", row["source"],
                          style="green" if fresh else None)
        previous[user] = set(ids)
        tables.append(table)
    header = Text(f"{status} · model {model} · * new since last look", style="bold")
    return Group(header, *tables)


def _category(shop: ShopSimulator, item: str) -> str:
    try:
        return shop.category_of(item)
    except KeyError:  # an item someone posted by hand while the demo runs
        return "-"


def console_address(url: str, key: str, page: str = "live") -> str:
    """The console's address logged in with ``key``: the key rides in the fragment, which
    the browser never sends (no server log holds it); the page moves it to the tab's
    session storage and drops it from the address bar."""
    return f"{url}/console/#key={quote(key, safe='')}&page={quote(page, safe='/')}"


def print_console(console: Console, url: str, key: str) -> None:
    console.print("[bold]Open the console in a browser[/] (live charts, models, users):")
    console.print(Text(console_address(url, key), style="cyan"), soft_wrap=True)
    console.print("[bold]A user's recommendations changing as the demo runs:[/]")
    console.print(Text(console_address(url, key, "users/user-00000"), style="cyan"),
                  soft_wrap=True)
    console.print()


def print_examples(console: Console, url: str, key: str, shop: ShopSimulator) -> None:
    """curl commands for every endpoint, to try in another terminal while the demo runs."""
    user, item, other = "user-00000", shop.items()[0].id, shop.items()[1].id
    auth = '-H "Authorization: Bearer $FRESHREC_KEY"'
    json = "-H 'Content-Type: application/json'"
    lines = [
        f"export FRESHREC_URL={url} FRESHREC_KEY={key}",
        'curl -s "$FRESHREC_URL/readyz"',
        f'curl -s {auth} "$FRESHREC_URL/v1/users/{user}/recommendations?k=5"',
        f'curl -s {auth} "$FRESHREC_URL/v1/items/{item}/similar?k=5"',
        f'curl -s {auth} "$FRESHREC_URL/v1/trending?k=5&category=garden"',
        f"curl -s {auth} {json} \"$FRESHREC_URL/v1/recommendations\" "
        f"-d '{{\"recent_items\": [\"{item}\", \"{other}\"], \"k\": 5}}'",
        f"curl -s {auth} {json} \"$FRESHREC_URL/v1/events\" "
        f"-d '{{\"events\": [{{\"user\": \"you\", \"item\": \"{item}\", \"type\": \"view\"}}]}}'",
        f"curl -s {auth} {json} \"$FRESHREC_URL/v1/items\" -d '{{\"items\": [{{\"id\": \"my-pot\","
        f" \"title\": \"Terracotta planter\", \"categories\": [\"garden\"]}}]}}'",
        f"curl -s {auth} {json} \"$FRESHREC_URL/v1/users\" "
        f"-d '{{\"users\": [{{\"id\": \"you\", \"properties\": {{\"country\": \"UK\"}}}}]}}'",
        f'curl -s {auth} "$FRESHREC_URL/v1/quarantine"',
        f'curl -s {auth} -X DELETE "$FRESHREC_URL/v1/users/you"',
        f'curl -s {auth} "$FRESHREC_URL/metrics" | grep freshrec_',
        "open $FRESHREC_URL/docs in a browser for the API reference",
    ]
    console.print("\n[bold]Try the API in another terminal while this runs:[/]")
    for line in lines:
        console.print(Text(line, style="cyan"), soft_wrap=True)
    console.print()
