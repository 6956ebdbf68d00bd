"""MovieLens "ml-latest-small" as a freshrec stream: ratings, a catalog, and tag upserts.

Every rating becomes a ``rating`` event. A movie enters the catalog at the time of
its first rating, never earlier: a replay must not know about a film before anyone
has watched it. Tags are free text that users attach over time, so they arrive as
catalog *upserts*: each new tag re-sends the movie's record with the tags known so
far in ``text``, which is how a content model would see its description grow.

The files are read with the stdlib :mod:`csv` module (they have CRLF line endings,
which ``newline=""`` handles) because the set is small: about 100k rows load in well
under a second, and no dataframe library is needed.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from freshrec.data.dataset import CleaningReport, Dataset
from freshrec.records import Event, Item

NAME = "movielens-small"
FILES = ("ratings.csv", "movies.csv", "tags.csv")
NO_GENRES = "(no genres listed)"
# "Title (1995)", "Title (1995) " and series such as "Death Note (2006–2007)".
_YEAR = re.compile(r"\((\d{4})(?:\s*[–-]\s*\d{4})?\)\s*$")


def load_movielens(path: str | Path | None = None) -> Dataset:
    """Load ml-latest-small from ``path`` (a folder), by default the shared data folder.

    The report counts rows of all three files: ``rows_read`` is ratings + movies +
    tags rows, ``rows_kept`` those that made it into the dataset, and ``dropped``
    names why the others did not (``movie_without_ratings``,
    ``tag_on_unrated_movie``, ``rating_on_unknown_movie``, ``empty_tag``,
    ``malformed_row``), so ``rows_read == rows_kept + sum(dropped)``.
    """
    folder = _resolve(path)
    report = CleaningReport()
    movies = _read_movies(folder / "movies.csv", report)
    events = _read_ratings(folder / "ratings.csv", movies, report)
    first_rating: dict[str, float] = {}
    for event in events:
        first_rating.setdefault(event.item, event.timestamp)
    unrated = len(movies.keys() - first_rating.keys())
    if unrated:
        report.drop("movie_without_ratings", unrated)
    report.rows_kept += len(first_rating)
    tags = _read_tags(folder / "tags.csv", first_rating, report)
    items = list(_catalog(movies, first_rating, tags))
    items.sort(key=lambda item: (item.timestamp, item.id))
    return Dataset(name=NAME, events=events, items=items, report=report, basket_key=None)


def _resolve(path: str | Path | None) -> Path:
    """The folder to read, with an error that says what was expected and where."""
    if path is None:
        from freshrec.data import shared_data_dir  # late: the package imports this module

        root = shared_data_dir()
        if root is None:
            raise FileNotFoundError(
                "no MovieLens path given and no shared data folder found: pass the folder "
                "holding ml-latest-small or set FRESHREC_DATASETS_DIR"
            )
        path = root / "movielens-small"
    folder = Path(path)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"MovieLens data not found in {folder}: missing {', '.join(missing)} "
            "(expected the unzipped ml-latest-small folder from grouplens.org)"
        )
    return folder


def _rows(file: Path, columns: tuple[str, ...], report: CleaningReport) -> Iterator[list[str]]:
    """Data rows of a CSV file, after checking its header names the expected columns."""
    with file.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(header[: len(columns)]) != columns:
            raise ValueError(f"{file}: expected columns {', '.join(columns)}, got {header}")
        for row in reader:
            report.rows_read += 1
            if len(row) < len(columns):
                report.drop("malformed_row")
                continue
            yield row


def _read_movies(file: Path, report: CleaningReport) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Movie id -> (title, genres); rows are counted as kept once the movie is rated."""
    movies: dict[str, tuple[str, tuple[str, ...]]] = {}
    for movie_id, title, genres, *_ in _rows(file, ("movieId", "title", "genres"), report):
        categories = tuple(g for g in genres.split("|") if g and g != NO_GENRES)
        movies[movie_id.strip()] = (title.strip(), categories)
    return movies


def _read_ratings(
    file: Path, movies: Mapping[str, object], report: CleaningReport
) -> list[Event]:
    columns = ("userId", "movieId", "rating", "timestamp")
    events = []
    for user, movie, rating, timestamp, *_ in _rows(file, columns, report):
        try:
            value, time = float(rating), float(timestamp)
        except ValueError:
            report.drop("malformed_row")
            continue
        if movie not in movies:
            report.drop("rating_on_unknown_movie")
            continue
        events.append(Event(user=user, item=movie, type="rating", value=value,
                            timestamp=time, id=f"ml:{user}:{movie}"))
    events.sort(key=lambda e: (e.timestamp, e.user, e.item))
    report.rows_kept += len(events)
    return events


def _read_tags(
    file: Path, first_rating: dict[str, float], report: CleaningReport
) -> dict[str, list[tuple[float, str]]]:
    """Movie id -> [(effective time, tag)] in time order, for rated movies only.

    A tag applied before the movie's first rating takes effect at that first
    rating: the movie is not in the catalog earlier.
    """
    tags: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for _user, movie, tag, timestamp, *_ in _rows(
        file, ("userId", "movieId", "tag", "timestamp"), report
    ):
        try:
            time = float(timestamp)
        except ValueError:
            report.drop("malformed_row")
            continue
        if movie not in first_rating:
            report.drop("tag_on_unrated_movie")
            continue
        text = " ".join(tag.split())
        if not text:
            report.drop("empty_tag")
            continue
        tags[movie].append((max(time, first_rating[movie]), text))
        report.rows_kept += 1
    for applied in tags.values():
        applied.sort(key=lambda entry: entry[0])  # stable: file order at equal times
    return tags


def _catalog(
    movies: dict[str, tuple[str, tuple[str, ...]]],
    first_rating: dict[str, float],
    tags: dict[str, list[tuple[float, str]]],
) -> Iterator[Item]:
    """One record per rated movie when it enters the catalog, then one per tag change.

    A movie enters the catalog at the start of its release year, or at its first
    rating if that comes earlier (or the title has no year). Entering at the
    first rating would make "just added to the catalog" a perfect predictor of
    "about to be rated" in a replay; real catalogs hold items before anyone
    touches them.

    Tags applied at the same moment are coalesced into one upsert, a tag that
    repeats one already known (ignoring case) changes nothing and sends nothing,
    and tags effective at the first rating are folded into the first record.
    """
    for movie, rated in first_rating.items():
        title, genres = movies[movie]
        year = _YEAR.search(title)
        properties = {"year": int(year.group(1))} if year else {}
        start = min(rated, _year_start(int(year.group(1)))) if year else rated
        moments: list[tuple[float, list[str]]] = [(start, [])]
        for time, tag in tags.get(movie, ()):
            if time != moments[-1][0]:
                moments.append((time, []))
            moments[-1][1].append(tag)
        known: dict[str, str] = {}
        for time, applied in moments:
            new = [tag for tag in applied if tag.casefold() not in known]
            for tag in new:
                known.setdefault(tag.casefold(), tag)
            if time == start or new:
                yield Item(id=movie, title=title, text=", ".join(known.values()),
                           categories=genres, properties=dict(properties), timestamp=time)


def _year_start(year: int) -> float:
    return datetime(year, 1, 1, tzinfo=UTC).timestamp()
