"""UCI Online Retail II (2009-2010) as a freshrec stream of purchases, cleaned.

The raw sheet is an accounting export, not a clickstream: besides purchases it
holds cancellations, postage and fee lines, manual adjustments, test products and
lines without a customer. A recommender must learn only from customers choosing
products, so :func:`load_online_retail` drops everything else and counts each drop
by reason in the :class:`~freshrec.data.dataset.CleaningReport`.

The file is read column-wise with ``pyarrow`` (the ``data`` extra) and filtered
with ``pyarrow.compute`` and numpy masks; Python only touches the rows that
survive, to build records.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from freshrec.data.dataset import CleaningReport, Dataset
from freshrec.records import Event, Item

NAME = "online-retail-ii"
FILE_NAME = "online_retail_2009_2010.parquet"
COLUMNS = ("Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price",
           "Customer ID", "Country")
PRODUCT_CODE = r"^[0-9]{5}[A-Z]*$"
"""Five digits and optional letters (``85123A``, ``15056BL``): the retailer's product codes."""
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def load_online_retail(path: str | Path | None = None) -> Dataset:
    """Load and clean Online Retail II from ``path`` (the parquet file or its folder).

    Each raw line is checked in this order and dropped for the first reason that
    applies, so every line is counted once:

    ``cancellation``
        Invoice starts with ``C``: a reversal of an earlier sale, not a choice.
    ``missing_customer``
        No Customer ID: the line cannot be attributed to a user (guest checkouts,
        and the three ``A`` bad-debt adjustment invoices).
    ``non_product_code``
        StockCode (stripped, upper-cased) is not five digits plus optional letters.
        In the 2009-2010 sheet these are: ``POST`` (postage), ``DOT`` (dotcom
        postage), ``C2``/``C3`` (carriage), ``M`` (manual), ``D`` (discount),
        ``S`` (samples), ``B`` (bad-debt adjustment), ``ADJUST``/``ADJUST2``
        (accounting adjustments), ``BANK CHARGES``, ``AMAZONFEE``, ``PADS``
        (cushion pads priced at a token 0.001), ``TEST001``/``TEST002`` (test
        products), ``GIFT``/``gift_0001_*`` (gift vouchers), ``DCGS*`` (a few
        items sold through a partner channel, almost all without customer) and
        ``SP1002`` (a special order). Fees and postage would otherwise be the most
        "popular items" of the shop.
    ``non_positive_quantity``
        Quantity <= 0: returns and stock write-offs not marked as cancellations.
    ``non_positive_price``
        Price <= 0: free samples and stock corrections.
    ``invalid_date``
        InvoiceDate does not parse as ``YYYY-MM-DD HH:MM:SS``.
    ``duplicate_line``
        All eight raw columns equal to an earlier kept line: an export artefact,
        and counting it twice would double a purchase.

    InvoiceDate is UK local time without a zone; it is read as UTC. The error is
    at most one hour (British Summer Time) and the same for every event, so
    orderings and gaps are unaffected except across the two clock changes.

    Events are purchases, sorted by (time, invoice, original row). Each item's
    catalog record is sent at its first purchase, with what was known then: the
    title is the description on that first line (whitespace tidied), and
    ``properties["price"]`` is its unit price on that line. The description varies
    between lines of the same code (typos, case); taking the first one avoids
    looking into the future. If the first line has no description, a later
    record fills the title in when one appears.
    """
    try:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading Online Retail II needs pyarrow: pip install 'freshrec[data]'"
        ) from None
    file = _resolve(path)
    table = pq.read_table(file, columns=list(COLUMNS))
    report = CleaningReport(rows_read=table.num_rows)
    codes = pc.utf8_upper(pc.utf8_trim_whitespace(table["StockCode"]))
    times = pc.strptime(table["InvoiceDate"], format=DATE_FORMAT, unit="s", error_is_null=True)
    customer = table["Customer ID"]
    checks = [
        ("cancellation", pc.starts_with(table["Invoice"], "C")),
        ("missing_customer", pc.or_kleene(pc.is_null(customer), pc.is_nan(customer))),
        ("non_product_code", pc.invert(pc.match_substring_regex(codes, PRODUCT_CODE))),
        ("non_positive_quantity", pc.less_equal(table["Quantity"], 0)),
        ("non_positive_price", pc.less_equal(table["Price"], 0.0)),
        ("invalid_date", pc.is_null(times)),
    ]
    keep = np.ones(table.num_rows, dtype=bool)
    for reason, failed in checks:
        keep = _apply(keep, _mask(pc.fill_null(failed, True)), reason, report)
    keep = _apply(keep, _duplicates(table, keep), "duplicate_line", report)
    rows = np.flatnonzero(keep)
    seconds = _mask_values(times.cast("int64"), rows).astype(np.float64)
    invoices = _mask_values(table["Invoice"], rows)
    _, invoice_rank = np.unique(invoices, return_inverse=True)
    order = np.lexsort((rows, invoice_rank, seconds))
    columns = {
        "row": rows[order],
        "invoice": invoices[order],
        "code": _mask_values(codes, rows)[order],
        "customer": _mask_values(customer, rows)[order].astype(np.int64),
        "quantity": _mask_values(table["Quantity"], rows)[order].astype(np.float64),
        "time": seconds[order],
        "description": _mask_values(table["Description"], rows)[order],
        "price": _mask_values(table["Price"], rows)[order],
    }
    events = _events(columns)
    report.rows_kept = len(events)
    items = _catalog(columns, _first_listed(codes, times))
    return Dataset(name=NAME, events=events, items=items, report=report, basket_key="session")


def baskets(events: Iterable[Event]) -> Iterator[list[Event]]:
    """Group consecutive events of the same (user, session) into baskets.

    Events without a session form baskets of their own user's consecutive run.

    >>> evs = [Event("u1", "a", "purchase", 0.0, session="1"),
    ...        Event("u1", "b", "purchase", 0.0, session="1"),
    ...        Event("u2", "a", "purchase", 5.0, session="2")]
    >>> [[e.item for e in basket] for basket in baskets(evs)]
    [['a', 'b'], ['a']]
    """
    for _, group in itertools.groupby(events, key=lambda e: (e.user, e.session)):
        yield list(group)


def _resolve(path: str | Path | None) -> Path:
    """The parquet file to read, with an error that says what was expected and where."""
    if path is None:
        from freshrec.data import shared_data_dir  # late: the package imports this module

        root = shared_data_dir()
        if root is None:
            raise FileNotFoundError(
                "no Online Retail II path given and no shared data folder found: pass the "
                f"{FILE_NAME} file (or its folder) or set FRESHREC_DATASETS_DIR"
            )
        path = root / "online-retail-ii"
    file = Path(path)
    if file.is_dir():
        file = file / FILE_NAME
    if not file.is_file():
        raise FileNotFoundError(
            f"Online Retail II data not found: {file} does not exist (expected the "
            "'Year 2009-2010' sheet of UCI Online Retail II saved as parquet)"
        )
    return file


def _mask(array: Any) -> np.ndarray:
    """A boolean pyarrow (chunked) array as a numpy bool array."""
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)


def _mask_values(array: Any, rows: np.ndarray) -> np.ndarray:
    """The values of a pyarrow column at ``rows``, as numpy."""
    return np.asarray(array.take(rows).to_numpy(zero_copy_only=False))


def _apply(keep: np.ndarray, failed: np.ndarray, reason: str, report: CleaningReport) -> np.ndarray:
    """Drop the still-kept rows that ``failed``, counting them under ``reason``."""
    hit = keep & failed
    count = int(hit.sum())
    if count:
        report.drop(reason, count)
    kept: np.ndarray = keep & ~failed
    return kept


def _duplicates(table: Any, keep: np.ndarray) -> np.ndarray:
    """Kept rows whose raw columns all equal those of an earlier kept row."""
    import pyarrow as pa

    rows = np.flatnonzero(keep)
    kept = table.take(rows).append_column("row", pa.array(rows))
    firsts = kept.group_by(list(COLUMNS)).aggregate([("row", "min")])
    duplicate = keep.copy()
    duplicate[firsts["row_min"].to_numpy()] = False
    return duplicate


def _events(columns: dict[str, np.ndarray]) -> list[Event]:
    return [
        Event(user=str(customer), item=code, type="purchase", value=quantity,
              timestamp=time, session=invoice, id=f"{invoice}:{row}")
        for row, invoice, code, customer, quantity, time in zip(
            columns["row"].tolist(), columns["invoice"].tolist(), columns["code"].tolist(),
            columns["customer"].tolist(), columns["quantity"].tolist(),
            columns["time"].tolist(), strict=True,
        )
    ]


def _first_listed(codes: Any, times: Any) -> dict[str, float]:
    """When each product code first shows up on any line of the raw log.

    Guest orders and cancelled lines still prove the product was on sale, so the
    catalog learns of a product then, often well before the first purchase by a
    known customer. Entering it only at that purchase would make "just added to
    the catalog" a perfect predictor of "about to be bought" in a replay.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    listed = pa.table({"code": codes, "time": times.cast("int64")}).filter(
        pc.is_valid(pc.field("time")))
    firsts = listed.group_by("code").aggregate([("time", "min")])
    return dict(zip(firsts["code"].to_pylist(), map(float, firsts["time_min"].to_pylist()),
                    strict=True))


def _catalog(columns: dict[str, np.ndarray], first_listed: dict[str, float]) -> list[Item]:
    """A record per product when first listed, plus one if its title arrives later."""
    items: list[Item] = []
    first_price: dict[str, float] = {}
    titled: set[str] = set()
    for code, time, description, price in zip(
        columns["code"].tolist(), columns["time"].tolist(),
        columns["description"].tolist(), columns["price"].tolist(), strict=True,
    ):
        if code in titled:
            continue
        title = " ".join((description or "").split())
        if code not in first_price or title:
            first = code not in first_price
            first_price.setdefault(code, price)
            listed = min(time, first_listed.get(code, time)) if first else time
            items.append(Item(id=code, title=title, properties={"price": first_price[code]},
                              timestamp=listed))
            if title:
                titled.add(code)
    return items
