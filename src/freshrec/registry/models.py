"""The model registry: every trained model as a :class:`ModelVersion`, and which one serves.

A version records what is needed to trust and reproduce a model: its parameters,
the code that trained it, the exact data (:class:`~freshrec.registry.datasets.DatasetVersion`),
offline metrics, the evaluation gate's decision, and its artifact files
(:class:`ArtifactRef`: snapshot id, sha256 and size in a
:class:`~freshrec.registry.snapshots.SnapshotStore`). :func:`load_artifact` reads an
artifact back and refuses it if it is missing or its bytes do not match.

Statuses::

    candidate --set_champion--> champion --(another set_champion)--> retired
        \\--(gate says no)--> refused              ^ roll back: set_champion(retired id)

There is at most one champion, and once one is set there is always exactly one:
``set_champion`` swaps in one step and ``update`` cannot change who is champion.
A *pinned* champion is one an admin froze: ``set_champion`` will not replace it
unless called with ``force=True`` (what a hand promotion or roll back does).
A *revoked* version (``revoked`` set, by an erasure) keeps its status and lineage
but has lost its artifacts; the lifecycle refuses to make it serve again.

>>> from freshrec.registry.datasets import DatasetVersion
>>> data = DatasetVersion(start_position=0, end_position=10, events=10,
...                       content_hash="ab" * 32, created=0.0)
>>> registry = MemoryModelRegistry()
>>> registry.register(ModelVersion(id=registry.next_id(), created=0.0, dataset=data))
>>> registry.register(ModelVersion(id=registry.next_id(), created=1.0, dataset=data))
>>> registry.set_champion("m0001")
>>> registry.set_champion("m0002")
>>> [(v.id, v.status) for v in registry.list()]
[('m0002', 'champion'), ('m0001', 'retired')]
>>> registry.update("m0001", notes="rolled back from m0002").notes
'rolled back from m0002'
"""

from __future__ import annotations

import builtins
import functools
import math
import os
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol, get_args, runtime_checkable

import msgspec

from freshrec._sqlite import SQLiteDatabase
from freshrec.errors import CorruptSnapshot, FreshrecError, StoreUnavailable
from freshrec.registry.datasets import DatasetVersion
from freshrec.registry.snapshots import SnapshotInfo, SnapshotStore

ModelStatus = Literal["candidate", "champion", "retired", "refused"]
STATUSES: tuple[str, ...] = get_args(ModelStatus)
VERSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_LIST_LIMIT = 100


class UnknownModelVersion(FreshrecError, KeyError):
    """No model version has this id."""

    def __init__(self, version_id: str) -> None:
        super().__init__(version_id)
        self.version_id = version_id

    def __str__(self) -> str:
        return f"unknown model version {self.version_id!r}"


class ChampionPinned(FreshrecError):
    """The champion is pinned; replacing it needs ``force=True`` (an admin's decision)."""


@functools.cache
def code_version() -> str:
    """``freshrec <version>``, plus ``+g<commit>`` (and ``.dirty``) inside a git checkout.

    Computed once per process: the code cannot change under a running process.
    """
    try:
        version = metadata.version("freshrec")
    except metadata.PackageNotFoundError:
        version = "unknown"
    # src/freshrec/registry/models.py -> the checkout's root, if this is one (an
    # installed wheel has no pyproject.toml there and must not report some other repo).
    root = Path(__file__).resolve().parents[3]
    commit = _git_describe(root) if (root / "pyproject.toml").is_file() else None
    return f"freshrec {version}" + (f"+g{commit}" if commit else "")


def _default_code_version() -> str:
    return code_version()


class ArtifactRef(msgspec.Struct, frozen=True, kw_only=True):
    """One file of a model: the snapshot holding it, with the hash it must still have."""

    name: str
    snapshot_id: str
    sha256: str
    size: int

    @classmethod
    def of(cls, info: SnapshotInfo, name: str | None = None) -> ArtifactRef:
        """The reference to a saved snapshot (named after it unless ``name`` is given)."""
        return cls(name=name or info.name, snapshot_id=info.id, sha256=info.sha256,
                   size=info.size)


class ModelVersion(msgspec.Struct, frozen=True, kw_only=True):
    """A trained model: what it is, what it saw, how it scored, where its files are.

    ``promoted`` is when it last became champion (``None`` if never), which is how
    :func:`previous_champion` finds the version to roll back to. ``revoked`` says why
    it may never serve again (it was trained before a user's data was erased, so it
    may hold that data); such a version cannot be promoted, rolled back to or restored.
    """

    id: str
    created: float
    dataset: DatasetVersion
    status: ModelStatus = "candidate"
    pinned: bool = False
    params: dict[str, Any] = {}
    code_version: str = msgspec.field(default_factory=_default_code_version)
    metrics: dict[str, float] = {}
    gate: dict[str, Any] | None = None
    artifacts: list[ArtifactRef] = []
    parent: str | None = None
    notes: str = ""
    promoted: float | None = None
    revoked: str | None = None
    trigger: str | None = None
    """Why it was trained: "initial: first model", "schedule: …", "drift: …", "manual"…"""
    decision: str | None = None
    """What the lifecycle did with it once trained: "promoted", "refused", "kept
    (champion pinned)", "failed", "cancelled" or "adopted" (an erasure's rebuild);
    ``None`` while it trains. A later hand promotion or roll back changes ``status``,
    not this."""


@runtime_checkable
class ModelRegistry(Protocol):
    """Model versions by id, newest first, with exactly one champion once one is set."""

    def register(self, version: ModelVersion) -> None:
        """Add a new version; its id must be unused and its status not ``champion``."""
        ...

    def get(self, version_id: str) -> ModelVersion | None:
        """The version, or ``None``."""
        ...

    def list(self, limit: int = DEFAULT_LIST_LIMIT,
             status: ModelStatus | None = None) -> builtins.list[ModelVersion]:
        """Versions (with ``status``, if given), most recently registered first."""
        ...

    def update(self, version_id: str, **changes: Any) -> ModelVersion:
        """Replace fields of a version and return it; ``id`` and championship are fixed."""
        ...

    def champion(self) -> ModelVersion | None:
        """The version being served, or ``None`` before the first promotion."""
        ...

    def next_id(self) -> str:
        """An unused id, ``m0001``, ``m0002``…; two racing callers may get the same one,
        and then the second ``register`` fails."""
        ...

    def set_champion(self, version_id: str, *, force: bool = False) -> None:
        """Make the version champion and the old one retired, in one step.

        Idempotent for the current champion. Raises :class:`ChampionPinned` if another
        version is champion and pinned, unless ``force``.
        """
        ...

    def close(self) -> None:
        """Release the store; idempotent."""
        ...


def previous_champion(registry: ModelRegistry) -> ModelVersion | None:
    """The retired version promoted most recently: where a roll back goes."""
    retired = [v for v in registry.list(limit=1_000_000, status="retired") if v.promoted]
    return max(retired, key=lambda v: v.promoted or 0.0, default=None)


def load_artifact(snapshots: SnapshotStore, ref: ArtifactRef) -> bytes:
    """The artifact's bytes, or :class:`CorruptSnapshot` if missing or not what was recorded."""
    info = next((s for s in snapshots.list() if s.id == ref.snapshot_id), None)
    if info is None:
        raise CorruptSnapshot(f"artifact {ref.name!r}: snapshot {ref.snapshot_id} is missing")
    if info.sha256 != ref.sha256 or info.size != ref.size:
        raise CorruptSnapshot(
            f"artifact {ref.name!r}: snapshot {ref.snapshot_id} has sha256 {info.sha256[:16]}… "
            f"({info.size} bytes), the registry recorded {ref.sha256[:16]}… ({ref.size} bytes)"
        )
    return snapshots.load(info)  # checks the bytes against the sha256 again


class MemoryModelRegistry:
    """A :class:`ModelRegistry` in memory; versions kept encoded, as SQLite keeps them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, bytes] = {}  # insertion order = registration order
        self._champion: str | None = None
        self._closed = False

    def register(self, version: ModelVersion) -> None:
        data = encode_version(check_new(version))
        with self._lock:
            self._check_open()
            if version.id in self._versions:
                raise ValueError(f"model version {version.id!r} is already registered")
            self._versions[version.id] = data

    def get(self, version_id: str) -> ModelVersion | None:
        with self._lock:
            self._check_open()
            data = self._versions.get(version_id)
        return None if data is None else decode_version(data)

    def list(self, limit: int = DEFAULT_LIST_LIMIT,
             status: ModelStatus | None = None) -> builtins.list[ModelVersion]:
        check_status(status)
        with self._lock:
            self._check_open()
            rows = list(reversed(self._versions.values()))
        found: builtins.list[ModelVersion] = []
        for data in rows:
            if len(found) >= max(limit, 0):
                break
            version = decode_version(data)
            if status is None or version.status == status:
                found.append(version)
        return found

    def update(self, version_id: str, **changes: Any) -> ModelVersion:
        with self._lock:
            self._check_open()
            data = self._versions.get(version_id)
            if data is None:
                raise UnknownModelVersion(version_id)
            updated = apply_changes(decode_version(data), changes)
            self._versions[version_id] = encode_version(updated)
            return updated

    def champion(self) -> ModelVersion | None:
        with self._lock:
            self._check_open()
            return None if self._champion is None else decode_version(
                self._versions[self._champion])

    def next_id(self) -> str:
        with self._lock:
            self._check_open()
            return first_unused_id(len(self._versions) + 1, self._versions.__contains__)

    def set_champion(self, version_id: str, *, force: bool = False) -> None:
        with self._lock:
            self._check_open()
            data = self._versions.get(version_id)
            if data is None:
                raise UnknownModelVersion(version_id)
            old = None if self._champion is None else decode_version(
                self._versions[self._champion])
            for changed in promotion(decode_version(data), old, force=force):
                self._versions[changed.id] = encode_version(changed)
            self._champion = version_id

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the in-memory model registry is closed")


SCHEMA = """
CREATE TABLE IF NOT EXISTS model_versions (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,  -- registration order: newest = largest
    id     TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    data   BLOB NOT NULL                       -- the ModelVersion as JSON
);
CREATE INDEX IF NOT EXISTS model_versions_status ON model_versions (status, seq);
-- The database itself refuses a second champion, whatever a buggy caller does.
CREATE UNIQUE INDEX IF NOT EXISTS model_versions_one_champion
    ON model_versions (status) WHERE status = 'champion';
"""


class SQLiteModelRegistry:
    """A :class:`ModelRegistry` in a SQLite file: one JSON document per version.

    The status is also a column (indexed, and unique for ``champion``), written in
    the same statement as the document so the two cannot disagree. Same durability
    and threading model as the other embedded stores (see :mod:`freshrec._sqlite`).

    >>> from freshrec.registry.datasets import DatasetVersion
    >>> data = DatasetVersion(start_position=0, end_position=0, events=0,
    ...                       content_hash="00" * 32, created=0.0)
    >>> registry = SQLiteModelRegistry(":memory:")
    >>> registry.register(ModelVersion(id="m0001", created=0.0, dataset=data))
    >>> registry.set_champion("m0001")
    >>> registry.champion().id, registry.next_id()
    ('m0001', 'm0002')
    >>> registry.close()
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._db = SQLiteDatabase(path, SCHEMA)

    def register(self, version: ModelVersion) -> None:
        checked = check_new(version)
        with self._db.transaction() as conn:
            if conn.execute("SELECT 1 FROM model_versions WHERE id = ?",
                            (checked.id,)).fetchone():
                raise ValueError(f"model version {checked.id!r} is already registered")
            conn.execute("INSERT INTO model_versions (id, status, data) VALUES (?, ?, ?)",
                         (checked.id, checked.status, encode_version(checked)))

    def get(self, version_id: str) -> ModelVersion | None:
        with self._db.reading() as conn:
            row = conn.execute("SELECT data FROM model_versions WHERE id = ?",
                               (version_id,)).fetchone()
        return None if row is None else decode_version(row[0])

    def list(self, limit: int = DEFAULT_LIST_LIMIT,
             status: ModelStatus | None = None) -> builtins.list[ModelVersion]:
        check_status(status)
        with self._db.reading() as conn:
            if status is None:
                rows = conn.execute("SELECT data FROM model_versions ORDER BY seq DESC LIMIT ?",
                                    (max(limit, 0),)).fetchall()
            else:
                rows = conn.execute("SELECT data FROM model_versions WHERE status = ? "
                                    "ORDER BY seq DESC LIMIT ?",
                                    (status, max(limit, 0))).fetchall()
        return [decode_version(data) for (data,) in rows]

    def update(self, version_id: str, **changes: Any) -> ModelVersion:
        with self._db.transaction() as conn:
            version = self._get(conn, version_id)
            if version is None:
                raise UnknownModelVersion(version_id)
            updated = apply_changes(version, changes)
            self._write(conn, updated)
            return updated

    def champion(self) -> ModelVersion | None:
        with self._db.reading() as conn:
            row = conn.execute("SELECT data FROM model_versions WHERE status = 'champion'"
                               ).fetchone()
        return None if row is None else decode_version(row[0])

    def next_id(self) -> str:
        with self._db.reading() as conn:
            (count,) = conn.execute("SELECT count(*) FROM model_versions").fetchone()

            def used(candidate: str) -> bool:
                return conn.execute("SELECT 1 FROM model_versions WHERE id = ?",
                                    (candidate,)).fetchone() is not None

            return first_unused_id(int(count) + 1, used)

    def set_champion(self, version_id: str, *, force: bool = False) -> None:
        with self._db.transaction() as conn:
            new = self._get(conn, version_id)
            if new is None:
                raise UnknownModelVersion(version_id)
            row = conn.execute("SELECT data FROM model_versions WHERE status = 'champion'"
                               ).fetchone()
            old = None if row is None else decode_version(row[0])
            # The old champion first: the unique index allows one champion at a time.
            for changed in reversed(promotion(new, old, force=force)):
                self._write(conn, changed)

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def _get(conn: sqlite3.Connection, version_id: str) -> ModelVersion | None:
        row = conn.execute("SELECT data FROM model_versions WHERE id = ?",
                           (version_id,)).fetchone()
        return None if row is None else decode_version(row[0])

    @staticmethod
    def _write(conn: sqlite3.Connection, version: ModelVersion) -> None:
        conn.execute("UPDATE model_versions SET status = ?, data = ? WHERE id = ?",
                     (version.status, encode_version(version), version.id))


# Shared by the backends, so both enforce exactly the same rules.

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ModelVersion)


def encode_version(version: ModelVersion) -> bytes:
    """The version as JSON (how every backend stores it)."""
    return _encoder.encode(version)


def decode_version(data: bytes) -> ModelVersion:
    """A version back from :func:`encode_version`'s JSON, type-checked."""
    return _decoder.decode(data)


def check_new(version: ModelVersion) -> ModelVersion:
    """Refuse what ``register`` must not accept; return a validated copy."""
    if not isinstance(version, ModelVersion):
        raise TypeError(f"expected a ModelVersion, got {type(version).__name__}")
    if not isinstance(version.id, str) or not VERSION_ID_PATTERN.match(version.id):
        raise ValueError(f"model version id {version.id!r} must be 1-64 letters, digits, '_', "
                         "'.' or '-', starting with a letter or digit")
    if version.status == "champion":
        raise ValueError("register a version as a candidate, then call set_champion: "
                         "that keeps exactly one champion")
    return _validated(version)


def check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r} (known: {', '.join(STATUSES)})")


def apply_changes(version: ModelVersion, changes: dict[str, Any]) -> ModelVersion:
    """``version`` with ``changes``, type-checked; refuses changes to id or championship."""
    unknown = sorted(set(changes) - set(ModelVersion.__struct_fields__))
    if unknown:
        raise ValueError(f"unknown model version field(s): {', '.join(unknown)}")
    if "id" in changes and changes["id"] != version.id:
        raise ValueError("a model version's id cannot change")
    status = changes.get("status", version.status)
    check_status(status)
    if (status == "champion") != (version.status == "champion"):
        raise ValueError("use set_champion to change the champion: it keeps exactly one")
    return _validated(msgspec.structs.replace(version, **changes))


def promotion(new: ModelVersion, old: ModelVersion | None, *,
              force: bool) -> builtins.list[ModelVersion]:
    """The versions to write to make ``new`` champion in place of ``old``."""
    if old is not None and old.id == new.id:
        return []
    if old is not None and old.pinned and not force:
        raise ChampionPinned(f"champion {old.id} is pinned; unpin it, or pass force=True, "
                             f"to make {new.id} champion")
    changed = [msgspec.structs.replace(new, status="champion", promoted=time.time())]
    if old is not None:
        # The pin belonged to its time as champion; a retired version has nothing to hold.
        changed.append(msgspec.structs.replace(old, status="retired", pinned=False))
    return changed


def first_unused_id(start: int, used: Callable[[str], bool]) -> str:
    """``m<n>`` for the first ``n >= start`` that ``used`` says is free (4 digits minimum)."""
    n = max(start, 1)
    while used(f"m{n:04d}"):
        n += 1
    return f"m{n:04d}"


def _validated(version: ModelVersion) -> ModelVersion:
    for name, value in version.metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            # JSON has no NaN: it would come back as null. Leave an undefined metric out.
            raise ValueError(f"invalid model version {version.id!r}: metrics[{name!r}] is "
                             f"{value}; metrics must be finite numbers")
    # A JSON round trip checks every type (Struct construction does not) and copies
    # the dicts, so a caller mutating its own dict cannot change the stored version.
    try:
        return decode_version(encode_version(version))
    except (msgspec.ValidationError, msgspec.EncodeError, TypeError) as exc:
        raise ValueError(f"invalid model version {version.id!r}: {exc}") from exc


def _git_describe(directory: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty=.dirty", "--abbrev=12",
             "--match=NO-TAGS-WANTED"],
            cwd=directory, capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no git, or not allowed to run it: the package version must do
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None
