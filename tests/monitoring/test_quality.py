"""OnlineQualityMonitor: hit, miss and click-through accounting, expiry, the drop flag."""

from __future__ import annotations

import random

import pytest

from freshrec.monitoring.quality import OnlineQualityMonitor
from freshrec.records import Event


def act(user: str, item: str, at: float, kind: str = "view") -> Event:
    return Event(user=user, item=item, type=kind, timestamp=at)


def test_a_hand_built_sequence() -> None:
    monitor = OnlineQualityMonitor(horizon=3_600)
    monitor.served("r1", "u1", ["a", "b"], timestamp=0.0)
    monitor.served("r2", "u2", ["c", "d"], timestamp=0.0)
    monitor.served("r3", "u3", ["e"], timestamp=0.0)
    assert monitor.observed(act("u1", "b", 10.0)) == "hit"
    assert monitor.observed(act("u2", "x", 20.0)) == "miss"
    # Only the first event after a list counts: this later hit changes nothing.
    assert monitor.observed(act("u2", "c", 30.0)) is None
    # u3 came back after the horizon: no outcome either way.
    assert monitor.observed(act("u3", "e", 4_000.0)) == "expired"
    # A click carrying r1's request id, on an item r1 showed: a click-through.
    assert monitor.observed(act("u1", "a", 40.0, "click"), request_id="r1") is None
    # The same request clicked again counts once; a click on an item the list did
    # not show is not a click-through; an unknown request id cannot be attributed.
    monitor.observed(act("u1", "b", 41.0, "click"), request_id="r1")
    monitor.observed(act("u2", "z", 42.0, "click"), request_id="r2")
    monitor.observed(act("u9", "a", 43.0, "click"), request_id="r404")
    # A view with a request id is not a click.
    monitor.observed(act("u3", "e", 44.0, "view"), request_id="r3")

    report = monitor.report()
    assert report["hit_rate"] == 0.5  # 1 hit, 1 miss; the expired list is not judged
    assert report["ctr"] == pytest.approx(1 / 3)  # r1 of r1, r2, r3
    assert report["window"] == {"outcomes": 2, "hits": 1, "impressions": 3, "clicks": 1,
                                "size": 2_000}
    lifetime = report["lifetime"]
    assert (lifetime["served"], lifetime["hits"], lifetime["misses"], lifetime["expired"],
            lifetime["clicks"], lifetime["unattributed_clicks"]) == (3, 1, 1, 1, 1, 1)
    assert (lifetime["hit_rate"], lifetime["ctr"]) == (0.5, pytest.approx(1 / 3))
    assert report["tracked_users"] == 0  # every pending list was settled


def test_a_click_is_also_the_users_next_event() -> None:
    monitor = OnlineQualityMonitor()
    monitor.served("r1", "u1", ["a"], timestamp=0.0)
    assert monitor.observed(act("u1", "a", 5.0, "click"), request_id="r1") == "hit"
    assert monitor.report()["ctr"] == 1.0


def test_an_empty_monitor_reports_no_rates() -> None:
    report = OnlineQualityMonitor().report()
    assert (report["hit_rate"], report["ctr"], report["reference_hit_rate"],
            report["dropped"]) == (None, None, None, False)
    assert report["lifetime"]["hit_rate"] is None


def test_events_of_users_without_a_list_are_ignored() -> None:
    monitor = OnlineQualityMonitor()
    assert monitor.observed(act("u1", "a", 0.0)) is None
    assert monitor.report()["window"]["outcomes"] == 0


def test_a_new_list_supersedes_the_pending_one() -> None:
    monitor = OnlineQualityMonitor()
    monitor.served("r1", "u1", ["a"], timestamp=0.0)
    monitor.served("r2", "u1", ["b"], timestamp=5.0)
    assert monitor.observed(act("u1", "a", 6.0)) == "miss"  # judged against r2's list
    lifetime = monitor.report()["lifetime"]
    assert (lifetime["superseded"], lifetime["served"]) == (1, 2)


def test_an_event_from_before_the_list_is_not_its_outcome() -> None:
    monitor = OnlineQualityMonitor(clock_skew=60)
    monitor.served("r1", "u1", ["a"], timestamp=1_000.0)
    assert monitor.observed(act("u1", "a", 500.0)) is None  # a late-delivered old event
    assert monitor.observed(act("u1", "a", 990.0)) == "hit"  # within the clock skew


def test_horizon_expiry() -> None:
    monitor = OnlineQualityMonitor(horizon=60)
    monitor.served("r1", "u1", ["a"], timestamp=0.0)
    assert monitor.observed(act("u1", "a", 60.0)) == "hit"  # exactly at the horizon
    monitor.served("r2", "u1", ["a"], timestamp=100.0)
    assert monitor.observed(act("u1", "a", 161.0)) == "expired"
    # Lists older than the horizon are purged when new lists are served.
    monitor.served("r3", "u2", ["a"], timestamp=200.0)
    monitor.served("r4", "u3", ["a"], timestamp=300.0)
    report = monitor.report()
    assert (report["tracked_users"], report["lifetime"]["expired"]) == (1, 2)
    assert monitor.observed(act("u2", "a", 301.0)) is None  # already expired


def test_memory_stays_bounded() -> None:
    monitor = OnlineQualityMonitor(max_users=2, max_requests=2)
    for n in range(5):
        monitor.served(f"r{n}", f"u{n}", ["a"], timestamp=float(n))
    report = monitor.report()
    assert (report["tracked_users"], report["tracked_requests"]) == (2, 2)
    assert report["lifetime"]["evicted"] == 3
    assert monitor.observed(act("u0", "a", 10.0)) is None  # evicted: no outcome
    monitor.observed(act("u0", "a", 10.0, "click"), request_id="r0")
    assert monitor.report()["lifetime"]["unattributed_clicks"] == 1


def test_the_rolling_window_forgets_old_outcomes() -> None:
    monitor = OnlineQualityMonitor(window=4, min_outcomes=4)
    for n, hit in enumerate([True, True, True, True, False, False]):
        monitor.served(f"r{n}", "u1", ["a"], timestamp=float(n))
        monitor.observed(act("u1", "a" if hit else "b", n + 0.5))
    report = monitor.report()
    assert report["hit_rate"] == 0.5  # the last four: T, T, F, F
    assert report["lifetime"]["hit_rate"] == pytest.approx(4 / 6)
    assert report["reference_hit_rate"] == 1.0  # taken at the first 4 outcomes


def feed(monitor: OnlineQualityMonitor, outcomes: int, rate: float, rng: random.Random,
         start: float) -> float:
    """Serve and settle ``outcomes`` lists, each a hit with probability ``rate``."""
    at = start
    for n in range(outcomes):
        at += 1.0
        monitor.served(f"r{at}", f"u{n % 50}", ["good"], timestamp=at)
        monitor.observed(act(f"u{n % 50}", "good" if rng.random() < rate else "bad", at + 0.5))
    return at


def test_a_drop_below_the_fraction_of_the_reference_is_flagged() -> None:
    rng = random.Random(4)
    monitor = OnlineQualityMonitor(window=500, min_outcomes=500, drop_fraction=0.8)
    at = feed(monitor, 500, 0.5, rng, 0.0)
    report = monitor.report()
    assert report["reference_hit_rate"] == pytest.approx(0.5, abs=0.05)
    assert not report["dropped"] and report["reasons"] == []
    feed(monitor, 500, 0.25, rng, at)
    report = monitor.report()
    assert report["dropped"]
    assert report["hit_rate"] == pytest.approx(0.25, abs=0.05)
    assert "below 0.8 x the reference" in report["reasons"][0]
    assert report["detector"]["drops"] >= 1


def test_a_steady_hit_rate_is_not_a_drop() -> None:
    rng = random.Random(9)
    monitor = OnlineQualityMonitor(window=1_000, min_outcomes=1_000)
    at = 0.0
    for _ in range(8):
        at = feed(monitor, 1_000, 0.3, rng, at)
        assert not monitor.report()["dropped"]
    assert monitor.report()["detector"]["drops"] == 0


def test_rebase_takes_a_new_reference() -> None:
    rng = random.Random(2)
    monitor = OnlineQualityMonitor(window=300, min_outcomes=300)
    at = feed(monitor, 300, 0.6, rng, 0.0)
    monitor.rebase()  # a promotion: the new model sets its own bar
    report = monitor.report()
    assert (report["reference_hit_rate"], report["hit_rate"]) == (None, None)
    assert report["lifetime"]["hits"] > 0  # lifetime totals survive
    at = feed(monitor, 300, 0.3, rng, at)
    assert monitor.report()["reference_hit_rate"] == pytest.approx(0.3, abs=0.07)
    assert not monitor.report()["dropped"]
    monitor.rebase(reference=0.6)  # or an explicit bar, e.g. the old model's rate
    feed(monitor, 300, 0.3, rng, at)
    assert monitor.report()["dropped"]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        OnlineQualityMonitor(window=0)
    with pytest.raises(ValueError):
        OnlineQualityMonitor(drop_fraction=1.5)
