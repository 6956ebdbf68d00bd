"""``freshrec demo``: a generated shop streamed into the engine, recommendations changing live."""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from freshrec.data.synthetic import DAY, ShopSimulator
from freshrec.engine import Engine
from freshrec.records import Event


def run_engine_demo(seconds: float = 60.0, events_per_second: float = 200.0,
                    console: Console | None = None) -> Engine:
    """Stream a shop into an in-process engine and show one user's recommendations change."""
    console = console or Console()
    shop = ShopSimulator.spanning(200_000, days=30.0, seed=7)
    engine = Engine()
    history = shop.next_events(20_000)
    engine.fit([*shop.items(until=history[-1].timestamp), *history])
    user = history[-1].user
    console.print(f"[bold]freshrec demo[/]: trained on {len(history):,} events; "
                  f"streaming {events_per_second:.0f} events/s for {seconds:.0f}s, "
                  f"watching user {user}")
    started = time.monotonic()
    shown_until = history[-1].timestamp
    while time.monotonic() - started < seconds:
        tick = time.monotonic()
        batch: list[Event] = shop.next_events(int(events_per_second))
        for item in shop.launched_between(shown_until, batch[-1].timestamp):
            engine.add_item(item)
        shown_until = batch[-1].timestamp
        for event in batch:
            engine.learn_one(event)
        if int(tick - started) % 5 == 0:
            _show(console, engine, user, shop, shown_until)
        if engine.state.events_seen % 20_000 < events_per_second:
            engine.retrain(background=True)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    return engine


def _show(console: Console, engine: Engine, user: str, shop: ShopSimulator, now: float) -> None:
    table = Table(title=f"{user} at day {(now - shop.start) / DAY:.1f} "
                        f"(prefers {', '.join(shop.preferred_categories(user, now))})")
    for column in ("item", "category", "score", "source"):
        table.add_column(column)
    for rec in engine.recommend(user, k=5):
        table.add_row(rec.item, shop.category_of(rec.item), f"{rec.score:.3f}", rec.source)
    console.print(table)
