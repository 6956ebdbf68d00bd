"""Where a data directory's stores are: all embedded, or the table stores in PostgreSQL.

Light on purpose (no web framework): the CLI's ``freshrec keys`` commands use it to
open the key store the server reads, and the server to refuse a data directory
that was served with the other kind of stores.
"""

from __future__ import annotations

from pathlib import Path

from freshrec.errors import StoreUnavailable
from freshrec.security.keys import KeyStore

DATABASE_MARK = "database.txt"
"""In a data directory whose stores are in PostgreSQL: its snapshots and models index
that log's positions, so it must not be served with an embedded log, nor the reverse."""
TABLE_STORE_FILES = ("events.sqlite", "catalog.sqlite", "keys.sqlite", "registry.sqlite",
                     "experiments.sqlite")
"""The embedded table stores, which a database URL replaces (snapshots and models stay)."""


def check_placement(data_dir: Path, database_url: str | None) -> None:
    """Refuse (StoreUnavailable) to mix the two kinds of stores over one data directory."""
    mark = data_dir / DATABASE_MARK
    if not database_url:
        if mark.exists():
            raise StoreUnavailable(f"{data_dir} was served with its stores in PostgreSQL "
                                   f"({mark.read_text().strip()}): give --database-url")
        return
    if (data_dir / "events.sqlite").exists():
        raise StoreUnavailable(f"{data_dir} holds an embedded event log, which its snapshots "
                               "index: use another --data-dir with --database-url")
    # Keys, models or experiments in a file beside a database would silently not be seen.
    embedded = [name for name in TABLE_STORE_FILES if (data_dir / name).exists()]
    if embedded:
        raise StoreUnavailable(f"{data_dir} holds embedded stores ({', '.join(embedded)}) "
                               "that are in the database with --database-url: move them "
                               "away, or use another --data-dir")


def open_key_store(data_dir: Path, database_url: str | None) -> KeyStore:
    """The key store a server over ``data_dir`` (and ``database_url``) verifies keys in."""
    if database_url:
        try:
            from freshrec.security.postgres_keys import PostgresKeyStore
        except ImportError as error:  # psycopg is the optional "postgres" extra
            raise StoreUnavailable(f"a PostgreSQL database needs psycopg ({error}); "
                                   "pip install 'freshrec[postgres]'") from None
        return PostgresKeyStore(database_url)
    check_placement(data_dir, None)
    from freshrec.security.keys import SQLiteKeyStore

    data_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteKeyStore(data_dir / "keys.sqlite")
