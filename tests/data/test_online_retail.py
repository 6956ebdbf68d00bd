"""Online Retail II loader: every cleaning rule on a tiny file, exact counts on the real one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from freshrec.data import Dataset, baskets, load_online_retail
from freshrec.records import Event, Item

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROWS = [
    # Invoice, StockCode, Description, Quantity, InvoiceDate, Price, Customer ID, Country
    ("100", "85123A", "WHITE HEART", 6, "2010-01-01 10:00:00", 2.55, 17850.0, "UK"),
    ("100", "71053", None, 6, "2010-01-01 10:00:00", 3.39, 17850.0, "UK"),
    ("100", "85123A", "WHITE HEART", 6, "2010-01-01 10:00:00", 2.55, 17850.0, "UK"),  # dup
    ("C101", "85123A", "WHITE HEART", -6, "2010-01-01 11:00:00", 2.55, 17850.0, "UK"),
    ("102", "22041", "RECORD FRAME", 4, "2010-01-01 09:00:00", 2.10, None, "UK"),
    ("102", "22041", "RECORD FRAME", 4, "2010-01-01 09:00:00", 2.10, float("nan"), "UK"),
    ("103", "POST", "POSTAGE", 1, "2010-01-01 09:30:00", 18.0, 12345.0, "France"),
    ("103", "gift_0001_20", "Voucher", 1, "2010-01-01 09:30:00", 20.0, 12345.0, "France"),
    ("103", "22041", "?", 0, "2010-01-01 09:30:00", 2.10, 12345.0, "France"),
    ("103", "22041", "free", 2, "2010-01-01 09:30:00", 0.0, 12345.0, "France"),
    ("103", "85123a ", "  white   heart ", 3, "2010-01-01 09:30:00", 2.95, 12345.0, "France"),
    ("104", "71053", "WHITE METAL  LANTERN", 1, "2010-01-02 08:00:00", 3.75, 13047.0, "UK"),
    ("105", "22041", "RECORD FRAME", 1, "2010-01-02 08:00:00", 2.10, 12345.0, "France"),
    ("106", "22041", "RECORD FRAME", 1, "not a date", 2.10, 12345.0, "France"),
]
NAMES = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price",
         "Customer ID", "Country"]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    columns = list(zip(*ROWS, strict=True))
    types = [pa.string(), pa.string(), pa.string(), pa.int64(), pa.string(), pa.float64(),
             pa.float64(), pa.string()]
    table = pa.table({name: pa.array(col, type=t, from_pandas=False)
                      for name, col, t in zip(NAMES, columns, types, strict=True)})
    file = tmp_path / "online_retail_2009_2010.parquet"
    pq.write_table(table, file)
    return file


def test_tiny_cleaning_counts_each_drop_once(tiny: Path) -> None:
    data = load_online_retail(tiny)
    assert data.report.as_dict() == {
        "rows_read": 14,
        "rows_kept": 5,
        "dropped": {
            "cancellation": 1,
            "missing_customer": 2,
            "non_product_code": 2,
            "non_positive_quantity": 1,
            "non_positive_price": 1,
            "invalid_date": 1,
            "duplicate_line": 1,
        },
    }


def test_tiny_events_sorted_by_time_invoice_row(tiny: Path) -> None:
    data = load_online_retail(tiny)
    assert data.name == "online-retail-ii" and data.basket_key == "session"
    t0 = 1262340000.0  # 2010-01-01 10:00:00 read as UTC
    assert data.events == [
        Event(user="12345", item="85123A", type="purchase", timestamp=t0 - 1800, value=3.0,
              id="103:10", session="103"),
        Event(user="17850", item="85123A", type="purchase", timestamp=t0, value=6.0,
              id="100:0", session="100"),
        Event(user="17850", item="71053", type="purchase", timestamp=t0, value=6.0,
              id="100:1", session="100"),
        Event(user="13047", item="71053", type="purchase", timestamp=t0 + 22 * 3600,
              value=1.0, id="104:11", session="104"),
        Event(user="12345", item="22041", type="purchase", timestamp=t0 + 22 * 3600,
              value=1.0, id="105:12", session="105"),
    ]
    assert [[e.id for e in basket] for basket in baskets(data.events)] == [
        ["103:10"], ["100:0", "100:1"], ["104:11"], ["105:12"],
    ]


def test_tiny_catalog_uses_first_line_without_look_ahead(tiny: Path) -> None:
    data = load_online_retail(tiny)
    t0 = 1262340000.0
    assert data.items == [
        # First seen with a messy description, tidied; the cleaner later spelling is not used.
        Item(id="85123A", title="white heart", properties={"price": 2.95}, timestamp=t0 - 1800),
        # First line has no description: a title-less record, then the title when it appears,
        # still with the first price.
        Item(id="71053", title="", properties={"price": 3.39}, timestamp=t0),
        Item(id="71053", title="WHITE METAL LANTERN", properties={"price": 3.39},
             timestamp=t0 + 22 * 3600),
        # Listed an hour before t0 by a line the cleaning drops: the catalog knew it then.
        Item(id="22041", title="RECORD FRAME", properties={"price": 2.10},
             timestamp=t0 - 3600),
    ]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"online_retail_2009_2010\.parquet does not exist"):
        load_online_retail(tmp_path)
    with pytest.raises(FileNotFoundError, match="Online Retail II data not found"):
        load_online_retail(tmp_path / "missing.parquet")


def test_baskets_split_on_user_or_session_change() -> None:
    events = [Event("u1", "a", "purchase", 0.0, session="s1"),
              Event("u2", "b", "purchase", 1.0, session="s1"),
              Event("u2", "c", "purchase", 2.0, session="s2"),
              Event("u2", "d", "purchase", 3.0, session="s2")]
    assert [[e.item for e in b] for b in baskets(events)] == [["a"], ["b"], ["c", "d"]]
    assert list(baskets([])) == []


# -- the real file ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def retail(shared_data: Path) -> Dataset:
    return load_online_retail(shared_data / "online-retail-ii")


@pytest.mark.realdata
def test_real_cleaning_report(retail: Dataset) -> None:
    assert retail.report.as_dict() == {
        "rows_read": 525_461,
        "rows_kept": 399_552,
        "dropped": {
            "cancellation": 10_206,
            "missing_customer": 107_560,
            "non_product_code": 1_372,
            "non_positive_price": 28,
            "duplicate_line": 6_743,
        },
    }
    report = retail.report
    assert report.rows_read == report.rows_kept + sum(report.dropped.values())


@pytest.mark.realdata
def test_real_users_items_and_new_items(retail: Dataset) -> None:
    events = retail.events
    assert len(events) == 399_552
    assert len({e.user for e in events}) == 4_285
    items = {e.item for e in events}
    assert len(items) == 4_006
    assert all(code[:5].isdigit() and code == code.upper() for code in items)
    assert len({e.id for e in events}) == len(events)
    assert len({e.session for e in events}) == 18_966
    half = len(events) // 2
    assert len({e.item for e in events[half:]} - {e.item for e in events[:half]}) == 376
    assert Counter(e.item for e in events).most_common(2) == [("85123A", 3_107),
                                                                ("85099B", 1_730)]


@pytest.mark.realdata
def test_real_order_and_baskets(retail: Dataset) -> None:
    events = retail.events
    keys = [(e.timestamp, e.session, int(e.id.split(":")[1])) for e in events]
    assert keys == sorted(keys)
    assert events[0] == Event(user="13085", item="85048", type="purchase",
                              timestamp=1259653500.0, value=12.0, id="489434:0",
                              session="489434")
    # No invoice is split by the sort: one basket per invoice.
    assert sum(1 for _ in baskets(events)) == 18_966


@pytest.mark.realdata
def test_real_catalog(retail: Dataset) -> None:
    assert len(retail.items) == 4_006  # every first line had a description
    assert all(item.title and item.properties["price"] > 0 for item in retail.items)
    first_purchase: dict[str, float] = {}
    for event in retail.events:
        first_purchase.setdefault(event.item, event.timestamp)
    assert all(item.timestamp <= first_purchase[item.id] for item in retail.items)
    # 1,080 products were listed (a guest order, a cancelled line) before their first purchase.
    assert sum(1 for i in retail.items if i.timestamp < first_purchase[i.id]) == 1_080
    assert retail.items[0] == Item(id="85048", title="15CM CHRISTMAS GLASS BALL 20 LIGHTS",
                                   properties={"price": 6.95}, timestamp=1259653500.0)
    known: set[str] = set()
    for record in retail.stream():
        if isinstance(record, Item):
            known.add(record.id)
        else:
            assert record.item in known
