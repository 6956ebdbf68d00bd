"""``PostgresExperimentStore``: experiments and their outcomes in a PostgreSQL database.

The same tables as :class:`~freshrec.experiments.store.SQLiteExperimentStore` (the
definition as msgspec JSON, shown lists' items as JSON text), named ``experiment_*``
so that one database can hold every store: ``users`` is the catalog's. Each batch of
:meth:`commit` is one ``unnest`` statement per table, all in one transaction with the
cursor, so a restart, or a new leader on another machine, goes on where the last
commit stopped. Rows are written in key order, so two writers cannot deadlock.

An erased user's rows are deleted; PostgreSQL reclaims their space at the next
(auto)vacuum, as the event log's do. Connections and failures as for the other
PostgreSQL stores (:mod:`freshrec._postgres`).

Example (needs a server)::

    store = PostgresExperimentStore("postgresql://freshrec@db.example/freshrec")
    store.find(status="running")
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from freshrec._postgres import Connection, PostgresDatabase, Row, columns
from freshrec.experiments.store import (
    PER_USER,
    ArmTotals,
    Experiment,
    OutcomeUpdate,
    Pending,
    ShownList,
    decode_experiment,
    encode_experiment,
    json_list,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id         text PRIMARY KEY,
    seq        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,  -- creation order
    kind       text NOT NULL,                               -- ab | shadow
    status     text NOT NULL,                               -- running | stopped
    definition bytea NOT NULL                               -- the Experiment, JSON
);
CREATE TABLE IF NOT EXISTS experiment_cursor (
    one      integer PRIMARY KEY CHECK (one = 1),
    position bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS experiment_users (
    experiment text NOT NULL, arm text NOT NULL, "user" text NOT NULL,
    requests bigint NOT NULL DEFAULT 0, impressions bigint NOT NULL DEFAULT 0,
    clicks bigint NOT NULL DEFAULT 0, outcomes bigint NOT NULL DEFAULT 0,
    hits bigint NOT NULL DEFAULT 0, purchases bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment, arm, "user")
);
CREATE INDEX IF NOT EXISTS experiment_users_user ON experiment_users ("user");
CREATE TABLE IF NOT EXISTS experiment_pending (
    experiment text NOT NULL, arm text NOT NULL, "user" text NOT NULL,
    items text NOT NULL, served double precision NOT NULL, request_id text NOT NULL,
    PRIMARY KEY (experiment, arm, "user")
);
CREATE INDEX IF NOT EXISTS experiment_pending_user ON experiment_pending ("user");
CREATE TABLE IF NOT EXISTS experiment_lists (
    experiment text NOT NULL, request_id text NOT NULL, arm text NOT NULL,
    "user" text NOT NULL, items text NOT NULL, served double precision NOT NULL,
    clicked boolean NOT NULL DEFAULT false,
    settled smallint NOT NULL DEFAULT 0, next_item text,
    PRIMARY KEY (experiment, request_id)
);
CREATE INDEX IF NOT EXISTS experiment_lists_served ON experiment_lists (served);
CREATE INDEX IF NOT EXISTS experiment_lists_user ON experiment_lists ("user");
CREATE TABLE IF NOT EXISTS experiment_tests (
    experiment text NOT NULL, arm text NOT NULL,
    p_value double precision NOT NULL, low double precision NOT NULL,
    high double precision NOT NULL,
    PRIMARY KEY (experiment, arm)
);
"""
_KEY3 = "%s::text[], %s::text[], %s::text[]"
_ADD_COUNTS = f"""
INSERT INTO experiment_users AS u (experiment, arm, "user", requests, impressions, clicks,
                                   outcomes, hits, purchases)
SELECT * FROM unnest({_KEY3}, %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],
                     %s::bigint[], %s::bigint[])
ON CONFLICT (experiment, arm, "user") DO UPDATE SET
    requests = u.requests + excluded.requests, impressions = u.impressions + excluded.impressions,
    clicks = u.clicks + excluded.clicks, outcomes = u.outcomes + excluded.outcomes,
    hits = u.hits + excluded.hits, purchases = u.purchases + excluded.purchases
"""
_SETTLE_PENDING = (f'DELETE FROM experiment_pending WHERE (experiment, arm, "user") IN '
                   f"(SELECT * FROM unnest({_KEY3}))")
_PUT_PENDING = f"""
INSERT INTO experiment_pending (experiment, arm, "user", items, served, request_id)
SELECT * FROM unnest({_KEY3}, %s::text[], %s::float8[], %s::text[])
ON CONFLICT (experiment, arm, "user") DO UPDATE SET
    items = excluded.items, served = excluded.served, request_id = excluded.request_id
"""
# DO NOTHING, as SQLite's INSERT OR IGNORE: a list logged twice keeps its first copy.
_ADD_LISTS = f"""
INSERT INTO experiment_lists (experiment, request_id, arm, "user", items, served)
SELECT * FROM unnest({_KEY3}, %s::text[], %s::text[], %s::float8[])
ON CONFLICT (experiment, request_id) DO NOTHING
"""
_CLICK_LISTS = ("UPDATE experiment_lists SET clicked = true WHERE (experiment, request_id) "
                "IN (SELECT * FROM unnest(%s::text[], %s::text[]))")
_SETTLE_LISTS = """
UPDATE experiment_lists l SET settled = s.settled, next_item = s.next_item
FROM unnest(%s::text[], %s::text[], %s::smallint[], %s::text[])
     AS s (experiment, request_id, settled, next_item)
WHERE l.experiment = s.experiment AND l.request_id = s.request_id
"""
_PUT_TESTS = """
INSERT INTO experiment_tests (experiment, arm, p_value, low, high)
SELECT * FROM unnest(%s::text[], %s::text[], %s::float8[], %s::float8[], %s::float8[])
ON CONFLICT (experiment, arm) DO UPDATE SET
    p_value = excluded.p_value, low = excluded.low, high = excluded.high
"""
_PUT_CURSOR = ("INSERT INTO experiment_cursor (one, position) VALUES (1, %s) "
               "ON CONFLICT (one) DO UPDATE SET position = excluded.position")


class PostgresExperimentStore:
    """An :class:`~freshrec.experiments.store.ExperimentStore` in a PostgreSQL database."""

    def __init__(self, url: str) -> None:
        self._db = PostgresDatabase(url, SCHEMA, probe_table="experiment_tests")
        self.where = self._db.where

    # -- definitions -------------------------------------------------------------------
    def create(self, experiment: Experiment) -> None:
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO experiments (id, kind, status, definition) "
                         "VALUES (%s, %s, %s, %s)", (experiment.id, experiment.kind,
                                                     experiment.status,
                                                     encode_experiment(experiment)))

    def get(self, experiment_id: str) -> Experiment | None:
        rows = self._db.fetch("SELECT definition FROM experiments WHERE id = %s",
                              (experiment_id,))
        return decode_experiment(bytes(rows[0][0])) if rows else None

    def find(self, kind: str | None = None, status: str | None = None) -> list[Experiment]:
        rows = self._db.fetch(
            "SELECT definition FROM experiments WHERE (%(kind)s::text IS NULL OR kind = "
            "%(kind)s) AND (%(status)s::text IS NULL OR status = %(status)s) "
            "ORDER BY seq DESC", {"kind": kind, "status": status})
        return [decode_experiment(bytes(row[0])) for row in rows]

    def stop(self, experiment_id: str, stopped: float, winner: str | None) -> None:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT definition FROM experiments WHERE id = %s FOR UPDATE",
                               (experiment_id,)).fetchone()
            if row is None:
                return
            done = msgspec.structs.replace(decode_experiment(bytes(row[0])), status="stopped",
                                           stopped=stopped, winner=winner)
            conn.execute("UPDATE experiments SET status = 'stopped', definition = %s "
                         "WHERE id = %s", (encode_experiment(done), experiment_id))

    # -- outcomes ------------------------------------------------------------------------
    def cursor(self) -> int:
        rows = self._db.fetch("SELECT position FROM experiment_cursor")
        return int(rows[0][0]) if rows else 0

    def pending(self, users: Iterable[str]) -> dict[tuple[str, str, str], Pending]:
        rows = self._by_user('experiment, arm, "user", items, served, request_id',
                             "experiment_pending", users)
        return {(e, a, u): Pending(tuple(json.loads(items)), served, request_id)
                for e, a, u, items, served, request_id in rows}

    def members(self, users: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        found: dict[str, list[tuple[str, str]]] = {}
        for experiment, arm, user in self._by_user('experiment, arm, "user"',
                                                   "experiment_users", users):
            found.setdefault(user, []).append((experiment, arm))
        return found

    def shown_lists(self, keys: Iterable[tuple[str, str]]
                    ) -> dict[tuple[str, str], ShownList]:
        requests = sorted({request for _, request in keys})
        if not requests:
            return {}
        rows = self._db.fetch(
            "SELECT experiment, request_id, arm, items, clicked, settled, next_item "
            "FROM experiment_lists WHERE request_id = ANY(%s::text[])", (requests,))
        return {(e, r): ShownList(arm, tuple(json.loads(items)), clicked, settled, next_item)
                for e, r, arm, items, clicked, settled, next_item in rows}

    def commit(self, update: OutcomeUpdate) -> None:
        # Sorted by key (unique in each dict, so values are never compared): two writers
        # lock rows in one order. One statement may not upsert a row twice: keys differ.
        counts = [(*key, c.requests, c.impressions, c.clicks, c.outcomes, c.hits, c.purchases)
                  for key, c in sorted(update.counts.items())]
        pending = sorted(update.pending.items())
        with self._db.transaction() as conn:
            _batch(conn, _ADD_COUNTS, counts, 9)
            _batch(conn, _SETTLE_PENDING, [key for key, value in pending if value is None], 3)
            _batch(conn, _PUT_PENDING, [(*key, json_list(value.items), value.served,
                                         value.request_id)
                                        for key, value in pending if value is not None], 6)
            _batch(conn, _ADD_LISTS, [(e, r, a, u, json_list(items), served)
                                      for e, r, a, u, items, served in update.lists], 6)
            _batch(conn, _CLICK_LISTS, sorted(update.clicked), 2)
            _batch(conn, _SETTLE_LISTS, [(e, r, 1 if item is not None else 2, item)
                                         for (e, r), item in sorted(update.settled.items())],
                   4)
            _batch(conn, _PUT_TESTS, [(*key, *state)
                                      for key, state in sorted(update.tests.items())], 5)
            conn.execute(_PUT_CURSOR, (update.cursor,))

    def totals(self, experiment_id: str) -> dict[str, ArmTotals]:
        rows = self._db.fetch(
            "SELECT arm, count(*), sum(requests), sum(impressions), sum(clicks), "
            "sum(outcomes), sum(hits), sum(purchases) FROM experiment_users "
            "WHERE experiment = %s GROUP BY arm", (experiment_id,))
        return {arm: ArmTotals(*(int(value or 0) for value in (*counts, users)))
                for arm, users, *counts in rows}

    def per_user(self, experiment_id: str, metric: str) -> dict[str, tuple[int, float, float]]:
        value, where = PER_USER[metric]
        rows = self._db.fetch(
            f"SELECT arm, count(*), sum(v), sum(v * v) FROM (SELECT arm, {value} AS v "
            f"FROM experiment_users WHERE experiment = %s AND {where}) AS per_user "
            "GROUP BY arm", (experiment_id,))
        return {arm: (int(n), float(total or 0.0), float(squares or 0.0))
                for arm, n, total, squares in rows}

    def test_states(self, experiment_id: str) -> dict[str, tuple[float, float, float]]:
        rows = self._db.fetch("SELECT arm, p_value, low, high FROM experiment_tests "
                              "WHERE experiment = %s", (experiment_id,))
        return {arm: (p, low, high) for arm, p, low, high in rows}

    def prune_lists(self, served_before: float) -> int:
        with self._db.transaction() as conn:
            return int(conn.execute("DELETE FROM experiment_lists WHERE served < %s",
                                    (served_before,)).rowcount)

    def erase_user(self, user: str) -> None:
        with self._db.transaction() as conn:
            for table in ("experiment_users", "experiment_pending", "experiment_lists"):
                conn.execute(f'DELETE FROM {table} WHERE "user" = %s', (user,))

    def close(self) -> None:
        self._db.close()

    def _by_user(self, fields: str, table: str, users: Iterable[str]) -> list[Row]:
        wanted = sorted(set(users))
        if not wanted:
            return []
        return self._db.fetch(f'SELECT {fields} FROM {table} WHERE "user" = ANY(%s::text[])',
                              (wanted,))


def _batch(conn: Connection, query: str, rows: Sequence[tuple[Any, ...]], width: int) -> None:
    """Run ``query`` on ``rows`` as ``unnest`` arrays, unless there are none."""
    if rows:
        conn.execute(query, columns(rows, width))
