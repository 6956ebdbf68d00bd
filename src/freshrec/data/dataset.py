"""A dataset as the loaders hand it over: items, events, and what cleaning dropped."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from freshrec.records import Event, Item


@dataclass
class CleaningReport:
    """Counts of what a loader read, kept and dropped, with the reason for each drop."""

    rows_read: int = 0
    rows_kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def drop(self, reason: str, count: int = 1) -> None:
        self.dropped[reason] += count

    def as_dict(self) -> dict[str, object]:
        return {"rows_read": self.rows_read, "rows_kept": self.rows_kept,
                "dropped": dict(self.dropped)}


@dataclass
class Dataset:
    """Events sorted by time, plus catalog records that may change over time.

    ``items`` holds catalog upserts, each with the timestamp at which it becomes
    known (an item appears in the catalog just before its first event, and
    later upserts, such as new tags, carry their own time). ``stream()`` merges
    both in time order, catalog first at equal times, which is how a live
    service would receive them.
    """

    name: str
    events: list[Event]
    items: list[Item]
    report: CleaningReport = field(default_factory=CleaningReport)
    basket_key: str | None = None
    """Event field that groups events into baskets ("session" for retail), if any."""

    def stream(self) -> Iterator[Item | Event]:
        items = ((item.timestamp or 0.0, 0, n, item) for n, item in enumerate(self.items))
        events = ((event.timestamp, 1, n, event) for n, event in enumerate(self.events))
        merged: Iterator[tuple[float, int, int, Item | Event]] = heapq.merge(
            items, events, key=lambda entry: entry[:3])
        for *_, record in merged:
            yield record
