"""MovieLens loader: exact counts on the real files, and the tag-upsert rules on a tiny copy."""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

from freshrec.data import Dataset, load_movielens, shared_data_dir
from freshrec.records import Event, Item
from freshrec.service.settings import Settings


def _write(folder: Path, name: str, lines: list[str]) -> None:
    # The real files use CRLF line endings; the tiny copy does too.
    (folder / name).write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    folder = tmp_path / "movielens-small"
    folder.mkdir()
    _write(folder, "movies.csv", [
        "movieId,title,genres",
        "1,Toy Story (1995),Adventure|Animation",
        '2,"Heat, The (1995) ",Action|Crime',
        "3,Never Rated (2001),Drama",
        "4,Black Mirror,(no genres listed)",
        "5,Death Note: Desu nôto (2006–2007),(no genres listed)",
    ])
    _write(folder, "ratings.csv", [
        "userId,movieId,rating,timestamp",
        "2,1,4.0,200",
        "1,2,3.5,100",
        "1,1,5.0,200",
        "3,4,2.0,50",
        "3,5,1.0,60",
    ])
    _write(folder, "tags.csv", [
        "userId,movieId,tag,timestamp",
        "9,1,early bird,150",   # before the first rating of movie 1: folded into its record
        "9,1,pixar,300",
        "8,1,Pixar,300",        # same moment, same tag ignoring case: no change
        "8,1,funny,300",        # same moment: coalesced with "pixar"
        "7,1,PIXAR,400",        # only a repeat: no upsert
        "7,1,  ,450",           # empty
        "7,3,orphan,100",       # movie never rated
        "7,2,heist,500",
    ])
    return folder


def test_tiny_catalog_and_tag_upserts(tiny: Path) -> None:
    data = load_movielens(tiny)
    assert [(i.id, i.timestamp, i.text) for i in data.items] == [
        ("4", 50.0, ""),
        ("5", 60.0, ""),
        ("2", 100.0, ""),
        ("1", 200.0, "early bird"),
        ("1", 300.0, "early bird, pixar, funny"),
        ("2", 500.0, "heist"),
    ]
    by_id = {item.id: item for item in data.items}
    assert by_id["1"] == Item(id="1", title="Toy Story (1995)", text="early bird, pixar, funny",
                              categories=("Adventure", "Animation"), properties={"year": 1995},
                              timestamp=300.0)
    assert by_id["2"].title == "Heat, The (1995)"
    assert by_id["2"].properties == {"year": 1995}
    assert by_id["4"].categories == () and by_id["4"].properties == {}
    assert by_id["5"].properties == {"year": 2006}


def test_tiny_events_sorted_and_report(tiny: Path) -> None:
    data = load_movielens(tiny)
    assert data.name == "movielens-small" and data.basket_key is None
    assert data.events == [
        Event(user="3", item="4", type="rating", timestamp=50.0, value=2.0, id="ml:3:4"),
        Event(user="3", item="5", type="rating", timestamp=60.0, value=1.0, id="ml:3:5"),
        Event(user="1", item="2", type="rating", timestamp=100.0, value=3.5, id="ml:1:2"),
        Event(user="1", item="1", type="rating", timestamp=200.0, value=5.0, id="ml:1:1"),
        Event(user="2", item="1", type="rating", timestamp=200.0, value=4.0, id="ml:2:1"),
    ]
    assert data.report.as_dict() == {
        "rows_read": 5 + 5 + 8,
        "rows_kept": 5 + 4 + 6,
        "dropped": {"movie_without_ratings": 1, "tag_on_unrated_movie": 1, "empty_tag": 1},
    }


def test_missing_folder_names_the_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing ratings\.csv, movies\.csv, tags\.csv"):
        load_movielens(tmp_path / "nowhere")


def test_default_folder_comes_from_the_environment(tiny: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRESHREC_DATASETS_DIR", str(tiny.parent))
    assert shared_data_dir() == tiny.parent
    assert len(load_movielens().events) == 5
    monkeypatch.setenv("FRESHREC_DATASETS_DIR", str(tiny.parent / "typo"))
    with pytest.raises(FileNotFoundError, match="typo"):
        load_movielens()


def test_the_service_data_directory_does_not_move_the_datasets(
        tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FRESHREC_DATA_DIR is the service's folder; setting it for `serve` must not
    send `replay` looking for datasets there."""
    monkeypatch.setenv("FRESHREC_DATASETS_DIR", str(tiny.parent))
    monkeypatch.setenv("FRESHREC_DATA_DIR", str(tiny.parent / "service-data"))
    assert shared_data_dir() == tiny.parent
    assert Settings.from_env().data_dir == tiny.parent / "service-data"


def test_wrong_header_is_refused(tiny: Path) -> None:
    _write(tiny, "ratings.csv", ["user,movie,rating,timestamp", "1,1,4.0,1"])
    with pytest.raises(ValueError, match="expected columns userId, movieId, rating, timestamp"):
        load_movielens(tiny)


# -- the real files --------------------------------------------------------------------


@pytest.fixture(scope="module")
def movielens(shared_data: Path) -> Dataset:
    return load_movielens(shared_data / "movielens-small")


@pytest.mark.realdata
def test_real_counts(movielens: Dataset) -> None:
    events = movielens.events
    assert len(events) == 100_836
    assert len({e.user for e in events}) == 610
    assert len({e.item for e in events}) == 9_724
    assert len({e.id for e in events}) == 100_836
    assert movielens.report.as_dict() == {
        "rows_read": 100_836 + 9_742 + 3_683,
        "rows_kept": 100_836 + 9_724 + 3_662,
        "dropped": {"movie_without_ratings": 18, "tag_on_unrated_movie": 21},
    }
    records = Counter(item.id for item in movielens.items)
    assert len(records) == 9_724
    assert len(movielens.items) == 12_999  # 9,724 first records + 3,275 tag upserts
    assert records["296"] == 172  # Pulp Fiction: the most tagged movie
    # New movies keep arriving: the second half of the ratings brings 4,157 first ratings.
    half = len(events) // 2
    assert len({e.item for e in events[half:]} - {e.item for e in events[:half]}) == 4_157


@pytest.mark.realdata
def test_real_events_are_time_ordered(movielens: Dataset) -> None:
    events = movielens.events
    assert events == sorted(events, key=lambda e: (e.timestamp, e.user, e.item))
    assert events[0] == Event(user="429", item="150", type="rating", timestamp=828124615.0,
                              value=5.0, id="ml:429:150")


@pytest.mark.realdata
def test_real_catalog_enters_at_release_year_or_first_rating(movielens: Dataset) -> None:
    first_rating: dict[str, float] = {}
    for event in movielens.events:
        first_rating.setdefault(event.item, event.timestamp)
    first_record: dict[str, Item] = {}
    for item in movielens.items:
        first_record.setdefault(item.id, item)
    assert all(v.timestamp <= first_rating[k] for k, v in first_record.items())
    # 9,710 movies are listed from the start of their release year, before anyone rated them.
    assert sum(1 for k, v in first_record.items() if v.timestamp < first_rating[k]) == 9_710
    assert first_record["60756"].timestamp == 1199145600.0  # Step Brothers (2008): 2008-01-01
    assert sum(1 for item in first_record.values() if not item.categories) == 34
    assert sum(1 for item in first_record.values() if "year" not in item.properties) == 12
    assert sum(1 for item in first_record.values() if item.text) == 0  # tags come later
    assert first_record["1"].title == "Toy Story (1995)"
    assert first_record["1"].properties == {"year": 1995}


@pytest.mark.realdata
def test_real_tag_upserts(movielens: Dataset) -> None:
    history = defaultdict(list)
    for item in movielens.items:
        history[item.id].append(item)
    assert [(i.timestamp, i.text) for i in history["60756"]] == [
        (1199145600.0, ""),
        (1445714992.0, "will ferrell"),
        (1445714994.0, "will ferrell, funny"),
        (1445714996.0, "will ferrell, funny, Highly quotable"),
        (1528934384.0, "will ferrell, funny, Highly quotable, comedy"),
    ]
    for records in history.values():
        times = [r.timestamp for r in records]
        assert times == sorted(set(times)), "one record per moment, in time order"
        texts = [r.text for r in records]
        assert all(later.startswith(earlier) for earlier, later in pairwise(texts))
    # "holocaust" repeats "Holocaust" on Schindler's List: kept once.
    assert history["527"][-1].text.casefold().split(", ").count("holocaust") == 1


@pytest.mark.realdata
def test_real_stream_sends_each_movie_before_its_first_rating(movielens: Dataset) -> None:
    known: set[str] = set()
    kinds = Counter()
    for record in movielens.stream():
        if isinstance(record, Item):
            known.add(record.id)
            kinds["item"] += 1
        else:
            assert record.item in known
            kinds["event"] += 1
    assert kinds == {"item": 12_999, "event": 100_836}
