"""Where experiments live: their definitions and the outcomes counted from the log.

:class:`ExperimentStore` is the narrow interface; :class:`SQLiteExperimentStore` keeps
it in ``<data_dir>/experiments.sqlite``, which every worker opens: the definitions
survive restarts and every worker serves the same ones, and the outcomes (written by
the leader only, :mod:`freshrec.experiments.outcomes`) read the same from any worker.
A networked store, :mod:`freshrec.experiments.postgres`, implements the same methods.

>>> store = SQLiteExperimentStore(":memory:")
>>> store.create(Experiment(id="e1", name="n", kind="ab", status="running", started=1.0,
...                         arms=(ArmSpec("a", "champion", 0.5), ArmSpec("b", "v2", 0.5))))
>>> [e.id for e in store.find(kind="ab")], store.get("e1").arms[1].model
(['e1'], 'v2')
>>> store.close()
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from freshrec._sqlite import SQLiteDatabase

METRICS = ("ctr", "hit_rate", "purchases_per_user")


class ArmSpec(msgspec.Struct, frozen=True):
    """An arm: a model ("champion" or a version id), a share, engine settings overrides."""

    name: str
    model: str = "champion"
    share: float = 0.5
    settings: dict[str, Any] = {}


class Experiment(msgspec.Struct, frozen=True):
    """An A/B experiment (``kind="ab"``) or a shadow model (``kind="shadow"``: its second
    arm answers a ``sample`` of requests unseen, beside the champion's first arm)."""

    id: str
    name: str
    kind: str
    status: str
    started: float
    arms: tuple[ArmSpec, ...]
    metric: str = "ctr"
    alpha: float = 0.05
    stopped: float | None = None
    sample: float = 1.0
    start_position: int = 0
    """Only what the log holds after this position counts."""
    winner: str | None = None


@dataclass(slots=True)
class Pending:
    """A user's last list in an arm, waiting for their next event."""

    items: tuple[str, ...]
    served: float
    request_id: str = ""


@dataclass(slots=True)
class ShownList:
    """A shown list, kept for the clicks that name its request (and for a shadow's list
    of the same request that reaches the log after the user's next event)."""

    arm: str
    items: tuple[str, ...]
    clicked: bool = False
    settled: int = 0
    """0: waiting for the user's next event; 1: settled by ``next_item``; 2: no outcome."""
    next_item: str | None = None


@dataclass(slots=True)
class UserCounts:
    """Increments of one user's counters in one arm."""

    requests: int = 0
    impressions: int = 0
    clicks: int = 0
    outcomes: int = 0
    hits: int = 0
    purchases: int = 0


@dataclass(slots=True)
class OutcomeUpdate:
    """What one pass over the log changes, written in one transaction with the cursor."""

    cursor: int
    counts: dict[tuple[str, str, str], UserCounts] = field(default_factory=dict)
    """(experiment, arm, user) -> increments."""
    pending: dict[tuple[str, str, str], Pending | None] = field(default_factory=dict)
    """(experiment, arm, user) -> the new pending list, or None (settled)."""
    lists: list[tuple[str, str, str, str, tuple[str, ...], float]] = field(default_factory=list)
    """Shown lists: (experiment, request_id, arm, user, items, served), for clicks."""
    clicked: set[tuple[str, str]] = field(default_factory=set)
    """(experiment, request_id) of lists clicked for the first time."""
    settled: dict[tuple[str, str], str | None] = field(default_factory=dict)
    """(experiment, request_id) of shown lists settled: the next item, or None (expired)."""
    tests: dict[tuple[str, str], tuple[float, float, float]] = field(default_factory=dict)
    """(experiment, arm) -> the sequential test's state (p-value, low, high)."""


@dataclass(slots=True)
class ArmTotals(UserCounts):
    """An arm's counters summed over its users."""

    users: int = 0


class ExperimentStore(Protocol):
    """Experiments and their outcomes; see the module docstring."""

    def create(self, experiment: Experiment) -> None: ...
    def get(self, experiment_id: str) -> Experiment | None: ...
    def find(self, kind: str | None = None, status: str | None = None) -> list[Experiment]: ...
    def stop(self, experiment_id: str, stopped: float, winner: str | None) -> None: ...
    def cursor(self) -> int:
        """The last log position the outcomes reflect."""
        ...
    def pending(self, users: Iterable[str]) -> dict[tuple[str, str, str], Pending]:
        """The lists waiting for these users' next event, by (experiment, arm, user)."""
        ...
    def members(self, users: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        """For each user served in an experiment: (experiment, arm) pairs."""
        ...
    def shown_lists(self, keys: Iterable[tuple[str, str]]
                    ) -> dict[tuple[str, str], ShownList]:
        """The shown lists of these (experiment, request_id)."""
        ...
    def commit(self, update: OutcomeUpdate) -> None: ...
    def totals(self, experiment_id: str) -> dict[str, ArmTotals]: ...
    def per_user(self, experiment_id: str, metric: str) -> dict[str, tuple[int, float, float]]:
        """Per arm: (users, sum, sum of squares) of the per-user ``metric``."""
        ...
    def test_states(self, experiment_id: str) -> dict[str, tuple[float, float, float]]: ...
    def prune_lists(self, served_before: float) -> int: ...
    def erase_user(self, user: str) -> None: ...
    def close(self) -> None: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,          -- ab | shadow
    status     TEXT NOT NULL,          -- running | stopped
    definition BLOB NOT NULL           -- the Experiment, JSON
);
CREATE TABLE IF NOT EXISTS cursor (one INTEGER PRIMARY KEY CHECK (one = 1),
                                   position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    experiment TEXT NOT NULL, arm TEXT NOT NULL, user TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0, impressions INTEGER NOT NULL DEFAULT 0,
    clicks INTEGER NOT NULL DEFAULT 0, outcomes INTEGER NOT NULL DEFAULT 0,
    hits INTEGER NOT NULL DEFAULT 0, purchases INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment, arm, user)
);
CREATE INDEX IF NOT EXISTS users_user ON users (user);
CREATE TABLE IF NOT EXISTS pending (
    experiment TEXT NOT NULL, arm TEXT NOT NULL, user TEXT NOT NULL,
    items TEXT NOT NULL, served REAL NOT NULL, request_id TEXT NOT NULL,
    PRIMARY KEY (experiment, arm, user)
);
CREATE INDEX IF NOT EXISTS pending_user ON pending (user);
CREATE TABLE IF NOT EXISTS lists (
    experiment TEXT NOT NULL, request_id TEXT NOT NULL, arm TEXT NOT NULL,
    user TEXT NOT NULL, items TEXT NOT NULL, served REAL NOT NULL,
    clicked INTEGER NOT NULL DEFAULT 0,
    settled INTEGER NOT NULL DEFAULT 0, next_item TEXT,
    PRIMARY KEY (experiment, request_id)
);
CREATE INDEX IF NOT EXISTS lists_served ON lists (served);
CREATE INDEX IF NOT EXISTS lists_user ON lists (user);
CREATE TABLE IF NOT EXISTS tests (
    experiment TEXT NOT NULL, arm TEXT NOT NULL,
    p_value REAL NOT NULL, low REAL NOT NULL, high REAL NOT NULL,
    PRIMARY KEY (experiment, arm)
);
"""

# Shared with the PostgreSQL store: DOUBLE PRECISION is SQLite's REAL and PostgreSQL's
# float8, so both backends compute the same doubles.
PER_USER = {
    "ctr": ("CAST(clicks AS DOUBLE PRECISION) / impressions", "impressions > 0"),
    "hit_rate": ("CAST(hits AS DOUBLE PRECISION) / outcomes", "outcomes > 0"),
    "purchases_per_user": ("CAST(purchases AS DOUBLE PRECISION)", "requests > 0"),
}
_UPSERT_COUNTS = """
INSERT INTO users (experiment, arm, user, requests, impressions, clicks, outcomes, hits,
                   purchases) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (experiment, arm, user) DO UPDATE SET
    requests = requests + excluded.requests, impressions = impressions + excluded.impressions,
    clicks = clicks + excluded.clicks, outcomes = outcomes + excluded.outcomes,
    hits = hits + excluded.hits, purchases = purchases + excluded.purchases
"""
encode_experiment = msgspec.json.Encoder().encode
decode_experiment = msgspec.json.Decoder(Experiment).decode


def json_list(values: Iterable[Any]) -> str:
    return json.dumps(list(values))


class SQLiteExperimentStore:
    """:class:`ExperimentStore` in one SQLite file (WAL); ``":memory:"`` for tests."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._db = SQLiteDatabase(path, SCHEMA, secure_delete=True)

    # -- definitions -------------------------------------------------------------------
    def create(self, experiment: Experiment) -> None:
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO experiments (id, kind, status, definition) "
                         "VALUES (?, ?, ?, ?)", (experiment.id, experiment.kind,
                                                 experiment.status, encode_experiment(experiment)))

    def get(self, experiment_id: str) -> Experiment | None:
        with self._db.reading() as conn:
            row = conn.execute("SELECT definition FROM experiments WHERE id = ?",
                               (experiment_id,)).fetchone()
        return None if row is None else decode_experiment(row[0])

    def find(self, kind: str | None = None, status: str | None = None) -> list[Experiment]:
        with self._db.reading() as conn:
            rows = conn.execute(
                "SELECT definition FROM experiments WHERE (?1 IS NULL OR kind = ?1) "
                "AND (?2 IS NULL OR status = ?2) ORDER BY rowid DESC", (kind, status)).fetchall()
        return [decode_experiment(row[0]) for row in rows]

    def stop(self, experiment_id: str, stopped: float, winner: str | None) -> None:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT definition FROM experiments WHERE id = ?",
                               (experiment_id,)).fetchone()
            if row is None:
                return
            done = msgspec.structs.replace(decode_experiment(row[0]), status="stopped",
                                           stopped=stopped, winner=winner)
            conn.execute("UPDATE experiments SET status = 'stopped', definition = ? "
                         "WHERE id = ?", (encode_experiment(done), experiment_id))

    # -- outcomes ------------------------------------------------------------------------
    def cursor(self) -> int:
        with self._db.reading() as conn:
            row = conn.execute("SELECT position FROM cursor").fetchone()
        return 0 if row is None else int(row[0])

    def pending(self, users: Iterable[str]) -> dict[tuple[str, str, str], Pending]:
        users = set(users)
        if not users:
            return {}
        with self._db.reading() as conn:
            rows = conn.execute(
                "SELECT experiment, arm, user, items, served, request_id FROM pending "
                "WHERE user IN (SELECT value FROM json_each(?))", (json_list(users),))
            return {(e, a, u): Pending(tuple(json.loads(items)), served, request_id)
                    for e, a, u, items, served, request_id in rows}

    def members(self, users: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        found: dict[str, list[tuple[str, str]]] = {}
        wanted = set(users)
        if not wanted:
            return found
        with self._db.reading() as conn:
            for experiment, arm, user in conn.execute(
                    "SELECT experiment, arm, user FROM users "
                    "WHERE user IN (SELECT value FROM json_each(?))", (json_list(wanted),)):
                found.setdefault(user, []).append((experiment, arm))
        return found

    def shown_lists(self, keys: Iterable[tuple[str, str]]
                    ) -> dict[tuple[str, str], ShownList]:
        requests = {request for _, request in keys}
        if not requests:
            return {}
        with self._db.reading() as conn:
            rows = conn.execute(
                "SELECT experiment, request_id, arm, items, clicked, settled, next_item "
                "FROM lists WHERE request_id IN (SELECT value FROM json_each(?))",
                (json_list(requests),))
            return {(e, r): ShownList(arm, tuple(json.loads(items)), bool(clicked), settled,
                                      next_item)
                    for e, r, arm, items, clicked, settled, next_item in rows}

    def commit(self, update: OutcomeUpdate) -> None:
        with self._db.transaction() as conn:
            conn.executemany(_UPSERT_COUNTS, [
                (e, a, u, c.requests, c.impressions, c.clicks, c.outcomes, c.hits, c.purchases)
                for (e, a, u), c in update.counts.items()])
            conn.executemany("DELETE FROM pending WHERE experiment = ? AND arm = ? AND user = ?",
                             [key for key, value in update.pending.items() if value is None])
            conn.executemany(
                "INSERT OR REPLACE INTO pending (experiment, arm, user, items, served, "
                "request_id) VALUES (?, ?, ?, ?, ?, ?)",
                [(*key, json_list(value.items), value.served, value.request_id)
                 for key, value in update.pending.items() if value is not None])
            conn.executemany(
                "INSERT OR IGNORE INTO lists (experiment, request_id, arm, user, items, served) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(e, r, a, u, json_list(items), served)
                 for e, r, a, u, items, served in update.lists])
            conn.executemany("UPDATE lists SET clicked = 1 WHERE experiment = ? AND "
                             "request_id = ?", sorted(update.clicked))
            conn.executemany(
                "UPDATE lists SET settled = ?, next_item = ? WHERE experiment = ? AND "
                "request_id = ?", [(1 if item is not None else 2, item, e, r)
                                   for (e, r), item in update.settled.items()])
            conn.executemany(
                "INSERT OR REPLACE INTO tests (experiment, arm, p_value, low, high) "
                "VALUES (?, ?, ?, ?, ?)", [(*key, *state) for key, state in update.tests.items()])
            conn.execute("INSERT OR REPLACE INTO cursor (one, position) VALUES (1, ?)",
                         (update.cursor,))

    def totals(self, experiment_id: str) -> dict[str, ArmTotals]:
        with self._db.reading() as conn:
            rows = conn.execute(
                "SELECT arm, count(*), sum(requests), sum(impressions), sum(clicks), "
                "sum(outcomes), sum(hits), sum(purchases) FROM users WHERE experiment = ? "
                "GROUP BY arm", (experiment_id,)).fetchall()
        return {arm: ArmTotals(*(int(value or 0) for value in (*counts, users)))
                for arm, users, *counts in rows}

    def per_user(self, experiment_id: str, metric: str) -> dict[str, tuple[int, float, float]]:
        value, where = PER_USER[metric]
        with self._db.reading() as conn:
            rows = conn.execute(
                f"SELECT arm, count(*), sum(v), sum(v * v) FROM (SELECT arm, {value} AS v "
                f"FROM users WHERE experiment = ? AND {where}) AS per_user GROUP BY arm",
                (experiment_id,)).fetchall()
        return {arm: (int(n), float(total or 0.0), float(squares or 0.0))
                for arm, n, total, squares in rows}

    def test_states(self, experiment_id: str) -> dict[str, tuple[float, float, float]]:
        with self._db.reading() as conn:
            rows = conn.execute("SELECT arm, p_value, low, high FROM tests WHERE experiment = ?",
                                (experiment_id,)).fetchall()
        return {arm: (p, low, high) for arm, p, low, high in rows}

    def prune_lists(self, served_before: float) -> int:
        with self._db.transaction() as conn:
            return int(conn.execute("DELETE FROM lists WHERE served < ?",
                                    (served_before,)).rowcount)

    def erase_user(self, user: str) -> None:
        with self._db.transaction() as conn:
            for table in ("users", "pending", "lists"):
                conn.execute(f"DELETE FROM {table} WHERE user = ?", (user,))
        self._db.truncate_wal()

    def close(self) -> None:
        self._db.close()


def arm_names(arms: Sequence[ArmSpec]) -> list[str]:
    return [arm.name for arm in arms]
