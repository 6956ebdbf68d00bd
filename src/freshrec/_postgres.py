"""One PostgreSQL connection shared by threads, behind a lock; the scaled-out stores build on it.

The PostgreSQL counterpart of :mod:`freshrec._sqlite`, used by every PostgreSQL store.

Threading model: each store owns ONE psycopg connection and serialises every use of
it with a ``threading.Lock``, like the embedded stores: the statements are short,
appends are batched (wrap the log in :class:`~freshrec.log.group_commit.GroupCommitLog`)
and several processes or machines each hold their own store, so a pool would buy
little. The connection runs in autocommit mode: a read is one statement, so one
snapshot; a write is an explicit ``BEGIN`` ... ``COMMIT``.

Durability: PostgreSQL's default ``synchronous_commit=on`` flushes the WAL before
``COMMIT`` returns.

Failures: every ``psycopg.Error`` leaves as :class:`~freshrec.errors.StoreUnavailable`
with the original as its cause, naming the server but never a password. A connection
the server dropped (a restart, a failover, an idle timeout) is replaced on the next
call. A read is retried once on a new connection, since reading twice is harmless;
a write only when its ``BEGIN`` failed, since then nothing was sent that could have
been committed. A write that fails later is not retried: its outcome may be unknown,
and the caller (a client resending ids, which the log deduplicates) decides.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import conninfo

from freshrec.errors import StoreUnavailable

Row = tuple[Any, ...]
Connection = psycopg.Connection[Row]
MAX_BIGINT = 2**63 - 1
"""The largest ``bigint``, the bound for a ``LIMIT`` or ``OFFSET`` a caller passes."""
# Creating tables concurrently races on the catalog's unique names; every store takes
# this transaction-level advisory lock (an arbitrary constant) around its schema.
_SCHEMA_LOCK = 0x66726573687265
_CONNECT_TIMEOUT_S = 10
"""Unless the URL says otherwise: an unreachable host fails after this, not minutes."""


class PostgresDatabase:
    """A PostgreSQL database at ``url``, its schema created on first use."""

    def __init__(self, url: str, schema: str, *, probe_table: str) -> None:
        """``schema`` is run once (under an advisory lock) when ``probe_table`` is missing."""
        self.url = url
        self.where = describe(url)
        self._schema = schema
        self._probe_table = probe_table
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._closed = False
        with self._lock:
            try:
                self._create_schema(self._connection())
            except psycopg.Error as exc:
                self._drop()
                raise StoreUnavailable(f"cannot open PostgreSQL database {self.where}: "
                                       f"{_brief(exc)}") from exc

    def fetch(self, query: str, params: Sequence[Any] | Mapping[str, Any] = (), *,
              binary: bool = False) -> list[Row]:
        """Run one read statement; its rows (``binary``: sent so, e.g. a large ``bytea``
        unescaped, not as hex text twice its size)."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection_or_unavailable("read from")
                try:
                    return conn.execute(query, params, binary=binary).fetchall()
                except psycopg.Error as exc:
                    if attempt == 1 and conn.broken:
                        self._drop()  # the server dropped it while idle: once more, anew
                        continue
                    self._after_error(conn)
                    raise self._unavailable("read from", exc) from exc
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Hold the lock and a transaction; commit on success, else roll back."""
        with self._lock:
            conn = self._begin()
            try:
                try:
                    yield conn
                except BaseException:
                    self._after_error(conn)
                    raise
                self._commit(conn)
            except psycopg.Error as exc:
                self._after_error(conn)
                raise self._unavailable("write to", exc) from exc

    def close(self) -> None:
        """Close the connection; later calls raise StoreUnavailable. Idempotent."""
        with self._lock:
            self._closed = True
            self._drop()

    def _begin(self) -> Connection:
        for attempt in (1, 2):
            conn = self._connection_or_unavailable("write to")
            try:
                conn.execute("BEGIN")
                return conn
            except psycopg.Error as exc:
                if attempt == 1 and conn.broken:
                    self._drop()
                    continue
                self._after_error(conn)
                raise self._unavailable("write to", exc) from exc
        raise AssertionError("unreachable")

    def _commit(self, conn: Connection) -> None:
        try:
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            # The server may have committed before the link broke: say so, for the
            # caller deciding whether to resend (events with ids are deduplicated).
            self._after_error(conn)
            raise StoreUnavailable(f"PostgreSQL commit to {self.where} failed, so the write "
                                   f"may or may not be stored: {_brief(exc)}") from exc

    def _connection_or_unavailable(self, doing: str) -> Connection:
        try:
            return self._connection()
        except psycopg.Error as exc:
            self._drop()
            raise self._unavailable(doing, exc) from exc

    def _connection(self) -> Connection:
        if self._closed:
            raise StoreUnavailable(f"PostgreSQL database {self.where} is closed")
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._drop()
            url = self.url
            if "connect_timeout" not in conninfo.conninfo_to_dict(url):
                url = conninfo.make_conninfo(url, connect_timeout=_CONNECT_TIMEOUT_S)
            self._conn = psycopg.connect(url, autocommit=True)
        return self._conn

    def _create_schema(self, conn: Connection) -> None:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                              (self._probe_table,)).fetchone()
        # Checked first: CREATE INDEX IF NOT EXISTS takes a table lock that would
        # wait for every open append, even when there is nothing to create.
        if exists is not None and exists[0]:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(self._schema)  # several statements: no parameters

    def _after_error(self, conn: Connection) -> None:
        """Leave the connection usable (rolled back) or drop it (broken)."""
        if conn.broken or conn.closed:
            self._drop()
            return
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _unavailable(self, doing: str, exc: psycopg.Error) -> StoreUnavailable:
        return StoreUnavailable(f"PostgreSQL {doing} {self.where} failed: {_brief(exc)}")


def columns(rows: Sequence[Row], width: int) -> list[list[Any]]:
    """Rows turned into one list per column, the arrays ``unnest`` takes apart again.

    One ``INSERT ... SELECT FROM unnest(%s::t1[], %s::t2[], ...)`` writes a whole batch
    in one round trip, where ``executemany`` would send a statement per row.

    >>> columns([(1, "a"), (2, "b")], 2)
    [[1, 2], ['a', 'b']]
    """
    if not rows:
        return [[] for _ in range(width)]
    found = [list(column) for column in zip(*rows, strict=True)]
    assert len(found) == width, "one array per placeholder"
    return found


def bound(limit: int | None) -> int | None:
    """A caller's limit or offset as PostgreSQL takes it (``None``: no limit).

    >>> bound(-3), bound(2**70), bound(None)
    (0, 9223372036854775807, None)
    """
    return None if limit is None else min(max(limit, 0), MAX_BIGINT)


def describe(url: str) -> str:
    """The server and database of ``url``, without user or password.

    >>> describe("postgresql://app:secret@db.example:5433/freshrec")
    'db.example:5433/freshrec'
    >>> describe("host=/run/postgresql dbname=f")
    '/run/postgresql:5432/f'
    """
    try:
        options = conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "(an unparsable URL)"
    host = options.get("host") or options.get("hostaddr") or "localhost"
    return f"{host}:{options.get('port') or 5432}/{options.get('dbname') or ''}"


def mask_password(text: str) -> str:
    """``text`` with every password of a URL or a ``password=`` option in it masked.

    libpq quotes the part of a URL it could not parse in its message, password and all.

    >>> mask_password('missing "=" after "mysql://app:secret@db/f" in connection info')
    'missing "=" after "mysql://app:***@db/f" in connection info'
    >>> mask_password("host=db password=secret dbname=f")
    'host=db password=*** dbname=f'
    """
    text = re.sub(r"(://[^:/@\s\"']*:)[^@\s\"']*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)('[^']*'|[^\s\"']+)", r"\1***", text)


def _brief(exc: psycopg.Error) -> str:
    """The error's first line (libpq adds hints and blank lines after it), without a
    password."""
    text = str(exc).strip()
    return mask_password(text.splitlines()[0]) if text else type(exc).__name__
