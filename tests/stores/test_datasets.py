"""Dataset versions over every event-log backend: stable hashes, ranges, read-back checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from freshrec.catalog import MemoryCatalogStore
from freshrec.log import EventLog, MemoryEventLog, SQLiteEventLog
from freshrec.records import Event, Item
from freshrec.registry.datasets import (
    DatasetMismatch,
    DatasetVersion,
    dataset_version,
    read_dataset,
    verify_dataset,
)


def event(n: int, *, user: str = "u1", value: float | None = None) -> Event:
    return Event(user=user, item=f"i{n}", type="view", timestamp=1_000.0 + n, value=value,
                 id=f"e{n}", session="s1" if n % 2 else None)


EVENTS = [event(n, user=f"u{n % 3}", value=float(n) if n % 4 == 0 else None)
          for n in range(1, 26)]


class DatasetContract:
    """Subclasses supply ``make_log``."""

    def make_log(self, tmp_path: Path, name: str = "log") -> EventLog:
        raise NotImplementedError

    @pytest.fixture
    def log(self, tmp_path: Path) -> Iterator[EventLog]:
        store = self.make_log(tmp_path)
        store.append(EVENTS)
        yield store
        store.close()

    def test_counts_the_range_and_names_itself(self, log: EventLog) -> None:
        version = dataset_version(log, end_position=25)
        assert (version.start_position, version.end_position, version.events) == (0, 25, 25)
        assert version.id == f"ds-25-{version.content_hash[:12]}"
        assert len(version.content_hash) == 64
        assert (version.first_timestamp, version.last_timestamp) == (1_001.0, 1_025.0)

    def test_the_hash_is_stable_and_the_same_on_every_backend(
        self, log: EventLog, tmp_path: Path
    ) -> None:
        first = dataset_version(log, end_position=25)
        assert dataset_version(log, end_position=25).content_hash == first.content_hash
        other = MemoryEventLog()
        other.append(EVENTS)
        assert dataset_version(other, end_position=25).content_hash == first.content_hash

    def test_an_int_timestamp_hashes_like_its_float(self, tmp_path: Path) -> None:
        as_float, as_int = self.make_log(tmp_path, "a"), MemoryEventLog()
        as_float.append([Event(user="u", item="i", type="view", timestamp=5.0)])
        as_int.append([Event(user="u", item="i", type="view", timestamp=5)])  # type: ignore[arg-type]
        assert (dataset_version(as_float, 1).content_hash
                == dataset_version(as_int, 1).content_hash)
        as_float.close()

    def test_any_changed_field_changes_the_hash(self, tmp_path: Path) -> None:
        base = dataset_version(self._log_of(tmp_path, "base", EVENTS), 25).content_hash
        variants = {
            "item": msgspec.structs.replace(EVENTS[7], item="other"),
            "type": msgspec.structs.replace(EVENTS[7], type="click"),
            "value": msgspec.structs.replace(EVENTS[7], value=0.5),
            "timestamp": msgspec.structs.replace(EVENTS[7], timestamp=2.0),
            "session": msgspec.structs.replace(EVENTS[7], session="s9"),
            "id": msgspec.structs.replace(EVENTS[7], id="renamed"),
            "user": msgspec.structs.replace(EVENTS[7], user="u9"),
        }
        for field, changed in variants.items():
            events = [*EVENTS[:7], changed, *EVENTS[8:]]
            version = dataset_version(self._log_of(tmp_path, field, events), 25)
            assert version.content_hash != base, field

    def test_ranges_are_start_exclusive_end_inclusive(self, log: EventLog) -> None:
        version = dataset_version(log, end_position=20, start_position=10)
        assert version.events == 10
        assert [e.item for e in read_dataset(log, version)] == [f"i{n}" for n in range(11, 21)]
        assert dataset_version(log, 20, 10).content_hash == version.content_hash
        assert dataset_version(log, 20, 9).content_hash != version.content_hash
        assert dataset_version(log, 21, 10).content_hash != version.content_hash
        empty = dataset_version(log, end_position=7, start_position=7)
        assert (empty.events, empty.first_timestamp, list(read_dataset(log, empty))) == (
            0, None, [])

    def test_read_back_gives_the_events_in_order(self, log: EventLog) -> None:
        version = dataset_version(log, end_position=25)
        assert list(read_dataset(log, version)) == EVENTS
        verify_dataset(log, version)

    def test_later_events_do_not_disturb_an_older_version(self, log: EventLog) -> None:
        version = dataset_version(log, end_position=25)
        log.append([event(99)])
        assert list(read_dataset(log, version)) == EVENTS

    def test_an_erasure_in_the_range_is_detected(self, log: EventLog) -> None:
        version = dataset_version(log, end_position=25)
        before_erasure = dataset_version(log, end_position=25)
        log.erase_user("u1")
        with pytest.raises(DatasetMismatch, match="erase") as caught:
            list(read_dataset(log, version))
        assert version.id in str(caught.value)
        with pytest.raises(DatasetMismatch):
            verify_dataset(log, version)
        after = dataset_version(log, end_position=25)
        assert after.content_hash != before_erasure.content_hash
        assert after.events == 25 - sum(1 for e in EVENTS if e.user == "u1")

    def test_an_erasure_outside_the_range_is_not_a_mismatch(self, tmp_path: Path) -> None:
        log = self._log_of(tmp_path, "outside", [*EVENTS, event(26, user="late")])
        version = dataset_version(log, end_position=25)
        log.erase_user("late")
        assert len(list(read_dataset(log, version))) == 25

    def test_a_forged_version_is_refused(self, log: EventLog) -> None:
        version = dataset_version(log, end_position=25)
        wrong_hash = msgspec.structs.replace(version, content_hash="0" * 64)
        with pytest.raises(DatasetMismatch):
            list(read_dataset(log, wrong_hash))
        too_few = msgspec.structs.replace(version, events=3)
        with pytest.raises(DatasetMismatch, match="more than 3"):
            list(read_dataset(log, too_few))

    def test_positions_not_yet_assigned_cannot_be_versioned(self, log: EventLog) -> None:
        with pytest.raises(ValueError, match="beyond"):
            dataset_version(log, end_position=26)
        with pytest.raises(ValueError, match="before"):
            dataset_version(log, end_position=3, start_position=4)
        with pytest.raises(ValueError, match="non-negative"):
            dataset_version(log, end_position=3, start_position=-1)

    def test_a_catalog_hash_is_folded_in_and_checked(self, log: EventLog) -> None:
        catalog = MemoryCatalogStore()
        catalog.upsert_items([Item(id="i1", title="Tea")])
        plain = dataset_version(log, end_position=25)
        with_catalog = dataset_version(log, end_position=25, catalog=catalog)
        assert with_catalog.catalog_hash is not None
        assert with_catalog.content_hash != plain.content_hash
        assert len(list(read_dataset(log, with_catalog))) == 25
        catalog.upsert_items([Item(id="i1", title="Green tea")])
        changed = dataset_version(log, end_position=25, catalog=catalog)
        assert changed.catalog_hash != with_catalog.catalog_hash

    def test_a_version_round_trips_as_json(self, log: EventLog) -> None:
        version = dataset_version(log, end_position=25)
        data = msgspec.json.encode(version)
        assert msgspec.json.decode(data, type=DatasetVersion) == version

    def test_more_than_one_read_batch(self, tmp_path: Path) -> None:
        many = [Event(user=f"u{n % 7}", item=f"i{n}", type="view", timestamp=float(n))
                for n in range(25_000)]
        log = self._log_of(tmp_path, "many", many)
        version = dataset_version(log, end_position=25_000)
        assert version.events == 25_000
        assert sum(1 for _ in read_dataset(log, version)) == 25_000
        other = MemoryEventLog()
        for start in range(0, len(many), 3_000):  # different append batches, same data
            other.append(many[start:start + 3_000])
        assert dataset_version(other, 25_000).content_hash == version.content_hash

    def _log_of(self, tmp_path: Path, name: str, events: list[Event]) -> EventLog:
        log = self.make_log(tmp_path, name)
        log.append(events)
        return log


class TestDatasetsOverMemoryLog(DatasetContract):
    def make_log(self, tmp_path: Path, name: str = "log") -> EventLog:
        return MemoryEventLog()


class TestDatasetsOverSQLiteLog(DatasetContract):
    def make_log(self, tmp_path: Path, name: str = "log") -> EventLog:
        return SQLiteEventLog(tmp_path / f"{name}.sqlite")
