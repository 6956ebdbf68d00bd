"""The CatalogStore contract, run against every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from freshrec.catalog import CatalogStore, MemoryCatalogStore, SQLiteCatalogStore
from freshrec.errors import StoreUnavailable
from freshrec.records import Item, User


class CatalogStoreContract:
    """Subclasses supply ``make_catalog``."""

    def make_catalog(self, tmp_path: Path) -> CatalogStore:
        raise NotImplementedError

    @pytest.fixture
    def catalog(self, tmp_path: Path) -> Iterator[CatalogStore]:
        store = self.make_catalog(tmp_path)
        yield store
        store.close()

    def test_satisfies_the_protocol(self, catalog: CatalogStore) -> None:
        assert isinstance(catalog, CatalogStore)

    def test_items_round_trip_every_field(self, catalog: CatalogStore) -> None:
        item = Item(id="i1", title="Tea", text="green, loose", categories=("drinks", "tea"),
                    properties={"price": 4.5, "brand": "Leaf", "organic": True, "note": None},
                    available=False, timestamp=1_700_000_000.5)
        catalog.upsert_items([item])
        assert catalog.get_item("i1") == item
        assert catalog.get_item("nope") is None

    def test_an_upsert_replaces_the_whole_item(self, catalog: CatalogStore) -> None:
        catalog.upsert_items([Item(id="i1", title="Tea", properties={"price": 4})])
        catalog.upsert_items([Item(id="i1", title="Green tea")])
        assert catalog.get_item("i1") == Item(id="i1", title="Green tea")
        assert catalog.item_count() == 1

    def test_the_last_copy_in_a_batch_wins(self, catalog: CatalogStore) -> None:
        catalog.upsert_items([Item(id="i1", title="old"), Item(id="i1", title="new")])
        assert catalog.get_item("i1").title == "new"  # type: ignore[union-attr]

    def test_iter_items_streams_all_in_id_order(self, catalog: CatalogStore) -> None:
        assert list(catalog.iter_items()) == []
        ids = [f"i{n:05d}" for n in range(2_500)]  # more than one page
        catalog.upsert_items([Item(id=i) for i in reversed(ids)])
        catalog.upsert_items([])
        assert [item.id for item in catalog.iter_items()] == ids
        assert catalog.item_count() == 2_500

    def test_users_upsert_replace_and_delete(self, catalog: CatalogStore) -> None:
        catalog.upsert_users([User(id="u1", properties={"country": "FR"}), User(id="u2")])
        catalog.upsert_users([User(id="u1", properties={"plan": "pro"})])
        assert catalog.get_user("u1") == User(id="u1", properties={"plan": "pro"})
        assert catalog.delete_user("u1") is True
        assert catalog.delete_user("u1") is False
        assert catalog.get_user("u1") is None
        assert catalog.get_user("u2") == User(id="u2")

    def test_a_closed_catalog_refuses_work(self, tmp_path: Path) -> None:
        catalog = self.make_catalog(tmp_path)
        catalog.close()
        catalog.close()
        with pytest.raises(StoreUnavailable):
            catalog.get_item("i1")
        with pytest.raises(StoreUnavailable):
            catalog.upsert_items([Item(id="i1")])


class TestMemoryCatalogStore(CatalogStoreContract):
    def make_catalog(self, tmp_path: Path) -> CatalogStore:
        return MemoryCatalogStore()


class TestSQLiteCatalogStore(CatalogStoreContract):
    def make_catalog(self, tmp_path: Path) -> CatalogStore:
        return SQLiteCatalogStore(tmp_path / "catalog.sqlite")

    def test_everything_survives_a_reopen(self, tmp_path: Path) -> None:
        path = tmp_path / "catalog.sqlite"
        catalog = SQLiteCatalogStore(path)
        catalog.upsert_items([Item(id="i1", categories=("a",)), Item(id="i2")])
        catalog.upsert_users([User(id="u1", properties={"k": 1})])
        catalog.close()
        reopened = SQLiteCatalogStore(path)
        try:
            assert [i.id for i in reopened.iter_items()] == ["i1", "i2"]
            assert reopened.get_item("i1") == Item(id="i1", categories=("a",))
            assert reopened.get_user("u1") == User(id="u1", properties={"k": 1})
        finally:
            reopened.close()


class TestPostgresCatalogStore(CatalogStoreContract):
    """On a private server (tests/_postgres.py), a new database per test."""

    @pytest.fixture(autouse=True)
    def _database(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_catalog(self, tmp_path: Path) -> CatalogStore:
        from freshrec.catalog.postgres import PostgresCatalogStore

        return PostgresCatalogStore(self.url)


def test_two_catalogs_upserting_overlapping_batches_at_once_never_deadlock(
        postgres_url: str) -> None:
    """Two machines' catalogs write the same items in opposite orders: PostgreSQL would
    abort one with a deadlock if rows were locked in batch order; sorted, both finish."""
    import threading

    from freshrec.catalog.postgres import PostgresCatalogStore

    stores = [PostgresCatalogStore(postgres_url) for _ in range(2)]
    ids = [f"item-{n:03d}" for n in range(200)]
    failures: list[BaseException] = []

    def write(store: CatalogStore, order: list[str], tag: str) -> None:
        try:
            for round_ in range(30):
                store.upsert_items([Item(id=item, categories=(f"{tag}-{round_}",))
                                    for item in order])
        except BaseException as error:  # reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=write, args=(stores[0], ids, "a")),
               threading.Thread(target=write, args=(stores[1], ids[::-1], "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        items = list(stores[0].iter_items())
        assert sorted(item.id for item in items) == ids
        # Each batch is one transaction: the last writer's batch is whole, not mixed.
        assert len({item.categories for item in items}) == 1
    finally:
        for store in stores:
            store.close()
