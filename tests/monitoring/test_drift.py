"""InputDriftMonitor: flags synthetic shifts, stays quiet on a stationary stream."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from freshrec.monitoring.drift import DriftThresholds, InputDriftMonitor
from freshrec.records import Event

BASE_TYPES = {"view": 0.85, "click": 0.1, "purchase": 0.05}


@dataclass
class Stream:
    """A synthetic event stream; change its fields to shift it."""

    seed: int = 7
    types: dict[str, float] | None = None
    items: int = 300
    item_offset: int = 0
    unknown_user: float = 0.1
    unknown_item: float = 0.02
    new_item: float = 0.03

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.n = 0

    def feed(self, monitor: InputDriftMonitor, count: int) -> None:
        types = self.types or BASE_TYPES
        kinds, weights = list(types), list(types.values())
        for _ in range(count):
            self.n += 1
            # Zipf-like popularity: item k drawn with weight 1/(k+1).
            rank = int(self.items ** self.rng.random()) - 1
            event = Event(user=f"u{self.rng.randrange(2_000)}",
                          item=f"i{rank + self.item_offset}",
                          type=self.rng.choices(kinds, weights)[0], timestamp=float(self.n))
            monitor.learn_one(event, known_user=self.rng.random() >= self.unknown_user,
                              known_item=self.rng.random() >= self.unknown_item,
                              new_item=self.rng.random() < self.new_item)


def monitor(**overrides: object) -> InputDriftMonitor:
    settings: dict[str, object] = {"reference_size": 5_000, "current_size": 5_000,
                                   "min_current": 1_000}
    settings.update(overrides)
    return InputDriftMonitor(**settings)  # type: ignore[arg-type]


def test_nothing_is_judged_while_the_windows_fill() -> None:
    watcher, stream = monitor(), Stream()
    stream.feed(watcher, 4_000)
    report = watcher.report()
    assert (report["ready"], report["drifted"], report["reference_events"]) == (
        False, False, 4_000)
    assert report["signals"]["event_types"]["psi"] is None
    stream.types = {"purchase": 1.0}  # even a blatant shift waits for min_current events
    stream.feed(watcher, 1_500)
    report = watcher.report()
    assert (report["ready"], report["drifted"], report["current_events"]) == (False, False, 500)


def test_a_stationary_stream_is_not_flagged() -> None:
    watcher, stream = monitor(), Stream(seed=11)
    stream.feed(watcher, 6_000)
    for _ in range(10):  # check at many points, sliding over 25,000 events
        stream.feed(watcher, 2_500)
        report = watcher.report()
        assert report["ready"]
        assert not report["drifted"], report["reasons"]
        for name, signal in report["signals"].items():
            assert signal["psi"] < 0.1, name
            assert signal["js"] < 0.1, name
    assert report["current_events"] == 5_000
    assert report["signals"]["unknown_users"]["reference"] == pytest.approx(0.1, abs=0.02)


def test_an_event_type_shift_is_flagged() -> None:
    watcher, stream = monitor(), Stream()
    stream.feed(watcher, 5_000)
    stream.types = {"view": 0.2, "click": 0.1, "purchase": 0.7}
    stream.feed(watcher, 5_000)
    report = watcher.report()
    assert report["drifted"]
    types = report["signals"]["event_types"]
    assert types["drifted"] and types["psi"] > 0.2
    assert types["reference"]["view"] == pytest.approx(0.85, abs=0.02)
    assert types["current"]["purchase"] == pytest.approx(0.7, abs=0.02)
    assert any(reason.startswith("event_types: PSI") for reason in report["reasons"])
    assert not report["signals"]["unknown_items"]["drifted"]


def test_a_burst_of_unknown_items_is_flagged() -> None:
    watcher, stream = monitor(), Stream()
    stream.feed(watcher, 7_000)
    assert not watcher.report()["drifted"]
    stream.unknown_item = 0.5
    stream.feed(watcher, 1_500)
    report = watcher.report()
    unknown = report["signals"]["unknown_items"]
    assert unknown["drifted"] and unknown["psi"] > 0.2
    assert unknown["detector"]["detections"] >= 1 and unknown["detector"]["recent"]
    assert [r.split(":")[0] for r in report["reasons"]] == ["unknown_items"]


def test_adwin_catches_a_rise_too_small_for_the_distances() -> None:
    # 2% -> 9% unknown items: PSI ≈ 0.11 and JS ≈ 0.14 over full windows, both
    # under 0.2, but a rise of 7 points (> 2 points, > 1.5x) that ADWIN finds significant.
    watcher, stream = monitor(), Stream(seed=5)
    stream.feed(watcher, 5_000)
    stream.unknown_item = 0.09
    stream.feed(watcher, 5_000)
    unknown = watcher.report()["signals"]["unknown_items"]
    assert unknown["psi"] < 0.2 and unknown["js"] < 0.2
    assert unknown["detector"]["significant"] and unknown["drifted"]
    assert "ADWIN detected a rise" in watcher.report()["reasons"][0]


def test_adwin_alone_is_not_enough_without_the_margin() -> None:
    thresholds = DriftThresholds(min_share_increase=0.5)
    watcher, stream = monitor(thresholds=thresholds), Stream(seed=5)
    stream.feed(watcher, 5_000)
    stream.unknown_item = 0.09
    stream.feed(watcher, 5_000)
    report = watcher.report()
    assert report["signals"]["unknown_items"]["detector"]["detections"] >= 1
    assert not report["drifted"]


def test_one_new_customers_basket_is_not_a_rise_in_unknown_users() -> None:
    # A shop's log comes in baskets: the newest 40 lines from one new customer make
    # ADWIN's own recent estimate jump towards 1.0, but the current window's share
    # barely moves, and only that counts.
    watcher, stream = monitor(), Stream(seed=11, unknown_user=0.3)
    stream.feed(watcher, 9_000)
    for n in range(40):
        watcher.learn_one(Event(user="newcomer", item=f"i{n}", type="purchase",
                                timestamp=10_000.0 + n),
                          known_user=False, known_item=True, new_item=False)
    users = watcher.report()["signals"]["unknown_users"]
    assert users["current"] - users["reference"] < 0.05
    assert not users["drifted"]


def test_traffic_moving_to_unseen_items_is_a_popularity_shift() -> None:
    watcher, stream = monitor(), Stream()
    stream.feed(watcher, 5_000)
    popularity = watcher.report()["signals"]["item_popularity"]
    assert set(popularity["reference"]) <= {f"d{n}" for n in range(1, 11)}
    stream.item_offset = 10_000  # the same shape over items the reference never saw
    stream.feed(watcher, 5_000)
    popularity = watcher.report()["signals"]["item_popularity"]
    assert popularity["drifted"]
    assert popularity["current"]["unseen"] == 1.0


def test_a_shift_clears_once_the_stream_returns() -> None:
    watcher, stream = monitor(), Stream()
    stream.feed(watcher, 5_000)
    stream.types = {"purchase": 1.0}
    stream.feed(watcher, 2_000)
    assert watcher.report()["drifted"]
    stream.types = None
    stream.feed(watcher, 5_000)  # the whole current window is back to normal
    assert not watcher.report()["drifted"]


def test_rebase_makes_the_current_window_the_reference() -> None:
    watcher, stream = monitor(), Stream()
    stream.feed(watcher, 5_000)
    stream.types = {"view": 0.2, "click": 0.1, "purchase": 0.7}
    stream.unknown_item = 0.3
    stream.feed(watcher, 5_000)
    assert watcher.report()["drifted"]
    watcher.rebase()
    report = watcher.report()
    assert (report["reference_events"], report["current_events"], report["ready"]) == (
        5_000, 0, False)
    assert report["signals"]["event_types"]["reference"]["purchase"] == pytest.approx(0.7,
                                                                                      abs=0.03)
    assert report["signals"]["unknown_items"]["detector"]["detections"] == 0
    stream.feed(watcher, 3_000)  # the new normal
    report = watcher.report()
    assert report["ready"] and not report["drifted"], report["reasons"]


def test_rebase_on_a_short_window_refills_the_reference() -> None:
    watcher, stream = monitor(), Stream()
    stream.feed(watcher, 5_600)
    watcher.rebase()
    assert watcher.report()["reference_events"] == 600
    stream.feed(watcher, 4_400)
    report = watcher.report()
    assert (report["reference_events"], report["current_events"]) == (5_000, 0)
    stream.feed(watcher, 1_000)
    assert watcher.report()["ready"]


def test_the_report_is_plain_json() -> None:
    import json

    watcher, stream = monitor(), Stream()
    stream.feed(watcher, 7_000)
    report = watcher.report()
    assert json.loads(json.dumps(report)) == report
    assert report["thresholds"]["psi"] == 0.2


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        InputDriftMonitor(reference_size=0)
