"""Model snapshots: ``SnapshotStore`` keeps serialised models with a checksum.

A snapshot is an opaque ``bytes`` payload (the caller serialises its model) with a
name (``"engine"``, ``"biased_mf"``), free JSON metadata, its sha256 and size, and
the event-log position it reflects, read from ``metadata["log_position"]``. On
restart the service loads ``latest()`` and replays the log after that position.

``load`` checks the bytes against the recorded sha256 and raises
:class:`~freshrec.errors.CorruptSnapshot` on any mismatch or missing file, so a
half-written or damaged model is never served; the caller then falls back to an
older snapshot or a rebuild from the log.

>>> store = MemorySnapshotStore()
>>> info = store.save("engine", b"model bytes", {"log_position": 42})
>>> (info.name, info.size, info.log_position)
('engine', 11, 42)
>>> store.load(store.latest())
b'model bytes'
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from freshrec.errors import CorruptSnapshot, StoreUnavailable

logger = logging.getLogger(__name__)

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
NAME_PATTERN = re.compile(rf"^{_NAME}$")
# "<10-digit sequence>-<name>": sorts by age as text, and cannot escape the directory.
ID_PATTERN = re.compile(rf"^(\d{{10}})-({_NAME})$")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SnapshotInfo:
    """What is known about a saved snapshot; ``load`` turns it back into bytes."""

    id: str
    name: str
    sha256: str
    size: int
    created: float
    log_position: int | None
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class SnapshotStore(Protocol):
    """Saved model snapshots, newest last."""

    def save(self, name: str, payload: bytes,
             metadata: Mapping[str, Any] | None = None) -> SnapshotInfo:
        """Store ``payload`` atomically: afterwards it is there whole, or not at all."""
        ...

    def latest(self, name: str | None = None) -> SnapshotInfo | None:
        """The newest snapshot (of ``name``, if given), or ``None``."""
        ...

    def load(self, info: SnapshotInfo) -> bytes:
        """The payload, checked against its sha256; :class:`CorruptSnapshot` otherwise."""
        ...

    def list(self, name: str | None = None) -> builtins.list[SnapshotInfo]:
        """Every snapshot (of ``name``, if given), oldest first."""
        ...

    def prune(self, keep: int) -> int:
        """Keep the newest ``keep`` snapshots of each name, delete the rest; return how many."""
        ...

    def delete(self, snapshot_id: str) -> bool:
        """Remove one snapshot (e.g. a model artifact holding erased data)."""
        ...

    def remove_leftovers(self) -> None:
        """Remove what a writer that died mid-save left behind (it is no snapshot)."""
        ...

    def close(self) -> None:
        """Release what the store holds (a database connection; files hold nothing)."""
        ...


def check_name(name: str) -> str:
    """Refuse names that are not short file-name-safe words.

    >>> check_name("../etc")
    Traceback (most recent call last):
    ...
    ValueError: snapshot name '../etc' must be 1-64 letters, digits, '_', '.' or '-', \
starting with a letter or digit
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"snapshot name {name!r} must be 1-64 letters, digits, '_', '.' or '-', "
                         "starting with a letter or digit")
    return name


def log_position_of(metadata: Mapping[str, Any]) -> int | None:
    """``metadata["log_position"]``, checked; shared by every backend."""
    position = metadata.get("log_position")
    if position is None:
        return None
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        raise ValueError(f"metadata['log_position'] must be a non-negative integer, "
                         f"got {position!r}")
    return position


def describe_new(name: str, seq: int, payload: bytes,
                 metadata: Mapping[str, Any] | None) -> SnapshotInfo:
    """The info of a snapshot about to be saved as number ``seq``; refuses bad input."""
    check_name(name)
    # A JSON round trip: refuses what could not be written to disk, and copies.
    plain = json.loads(json.dumps(dict(metadata or {})))
    return SnapshotInfo(
        id=f"{seq:010d}-{name}", name=name, sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload), created=time.time(), log_position=log_position_of(plain),
        metadata=plain,
    )


def verified(info: SnapshotInfo, payload: bytes) -> bytes:
    """``payload`` if it has ``info``'s size and sha256; :class:`CorruptSnapshot` otherwise."""
    actual = hashlib.sha256(payload).hexdigest()
    if len(payload) != info.size or actual != info.sha256:
        raise CorruptSnapshot(
            f"snapshot {info.id} is corrupt: {len(payload)} bytes with sha256 {actual[:16]}…, "
            f"expected {info.size} bytes with sha256 {info.sha256[:16]}…"
        )
    return payload


def to_prune(snapshots: builtins.list[SnapshotInfo], keep: int) -> builtins.list[SnapshotInfo]:
    """Of ``snapshots`` (oldest first), all but the newest ``keep`` of each name."""
    if keep < 0:
        raise ValueError(f"keep must be 0 or more, got {keep}")
    by_name: dict[str, builtins.list[SnapshotInfo]] = {}
    for info in snapshots:  # oldest first
        by_name.setdefault(info.name, []).append(info)
    return [info for infos in by_name.values() for info in infos[: max(len(infos) - keep, 0)]]


class MemorySnapshotStore:
    """A :class:`SnapshotStore` in memory (tests, demos); checks sha256 like the real one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._infos: dict[str, SnapshotInfo] = {}
        self._payloads: dict[str, bytes] = {}
        self._seq = 0

    def save(self, name: str, payload: bytes,
             metadata: Mapping[str, Any] | None = None) -> SnapshotInfo:
        with self._lock:
            info = describe_new(name, self._seq + 1, payload, metadata)
            self._seq += 1
            self._infos[info.id] = info
            self._payloads[info.id] = bytes(payload)
            return info

    def latest(self, name: str | None = None) -> SnapshotInfo | None:
        snapshots = self.list(name)
        return snapshots[-1] if snapshots else None

    def load(self, info: SnapshotInfo) -> bytes:
        with self._lock:
            payload = self._payloads.get(info.id)
        if payload is None:
            raise CorruptSnapshot(f"snapshot {info.id} is missing")
        return verified(info, payload)

    def list(self, name: str | None = None) -> builtins.list[SnapshotInfo]:
        with self._lock:
            return [info for _, info in sorted(self._infos.items())
                    if name is None or info.name == name]

    def prune(self, keep: int) -> int:
        doomed = to_prune(self.list(), keep)
        with self._lock:
            for info in doomed:
                self._infos.pop(info.id, None)
                self._payloads.pop(info.id, None)
        return len(doomed)

    def delete(self, snapshot_id: str) -> bool:
        with self._lock:
            self._payloads.pop(snapshot_id, None)
            return self._infos.pop(snapshot_id, None) is not None

    def remove_leftovers(self) -> None:
        """Nothing to do: a save in memory cannot be cut half-way."""

    def close(self) -> None:
        """Nothing to release."""


class LocalSnapshotStore:
    """A :class:`SnapshotStore` in a local directory: ``<id>.snap`` plus a ``<id>.json`` sidecar.

    The payload is written first, then its sidecar, each atomically (temp file in
    the same directory, flush, fsync, ``os.replace``, fsync of the directory). A
    snapshot exists once its sidecar does, so a crash mid-save leaves at most an
    orphan payload or temp file, invisible and removed by the next ``prune``.
    One process should write to a directory at a time.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create snapshot directory {self.directory}: "
                                   f"{exc}") from exc

    def save(self, name: str, payload: bytes,
             metadata: Mapping[str, Any] | None = None) -> SnapshotInfo:
        with self._lock:
            info = describe_new(name, self._next_seq(), payload, metadata)
            sidecar = json.dumps({"format": FORMAT_VERSION, **_as_dict(info)}, indent=1)
            try:
                _write_atomic(self._payload_path(info.id), payload)
                _write_atomic(self._sidecar_path(info.id), sidecar.encode("utf-8"))
            except OSError as exc:
                raise StoreUnavailable(f"cannot save snapshot {info.id}: {exc}") from exc
            return info

    def latest(self, name: str | None = None) -> SnapshotInfo | None:
        snapshots = self.list(name)
        return snapshots[-1] if snapshots else None

    def load(self, info: SnapshotInfo) -> bytes:
        if not ID_PATTERN.match(info.id):
            raise CorruptSnapshot(f"{info.id!r} is not a snapshot id")
        path = self._payload_path(info.id)
        try:
            payload = path.read_bytes()
        except FileNotFoundError:
            raise CorruptSnapshot(f"snapshot {info.id} is missing its file {path}") from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read snapshot {info.id}: {exc}") from exc
        return verified(info, payload)

    def list(self, name: str | None = None) -> builtins.list[SnapshotInfo]:
        snapshots = []
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError as exc:
            raise StoreUnavailable(f"cannot list {self.directory}: {exc}") from exc
        for path in paths:
            if not ID_PATTERN.match(path.stem):
                continue
            info = _read_sidecar(path)
            if info is not None and (name is None or info.name == name):
                snapshots.append(info)
        return snapshots

    def prune(self, keep: int) -> int:
        with self._lock:
            doomed = to_prune(self.list(), keep)
            try:
                for info in doomed:
                    # Sidecar first: the snapshot stops existing before its bytes go.
                    self._sidecar_path(info.id).unlink(missing_ok=True)
                    self._payload_path(info.id).unlink(missing_ok=True)
                self._remove_leftovers()
                _fsync_directory(self.directory)
            except OSError as exc:
                raise StoreUnavailable(f"cannot prune {self.directory}: {exc}") from exc
            return len(doomed)

    def delete(self, snapshot_id: str) -> bool:
        if not ID_PATTERN.match(snapshot_id):
            return False
        with self._lock:
            sidecar = self._sidecar_path(snapshot_id)
            existed = sidecar.exists()
            try:
                sidecar.unlink(missing_ok=True)
                self._payload_path(snapshot_id).unlink(missing_ok=True)
                _fsync_directory(self.directory)
            except OSError as exc:
                raise StoreUnavailable(f"cannot delete snapshot {snapshot_id}: {exc}") from exc
            return existed

    def remove_leftovers(self) -> None:
        """Temp files and payloads without a sidecar, left by a crash or kill mid-save."""
        with self._lock:
            try:
                self._remove_leftovers()
            except OSError as exc:
                raise StoreUnavailable(f"cannot clean {self.directory}: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: every call opens and closes its files."""

    def _remove_leftovers(self) -> None:
        """Temp files and payloads without a sidecar, left by a crash mid-save."""
        for path in self.directory.glob(".*.tmp"):
            path.unlink(missing_ok=True)
        for path in self.directory.glob("*.snap"):
            if ID_PATTERN.match(path.stem) and not self._sidecar_path(path.stem).exists():
                path.unlink(missing_ok=True)

    def _next_seq(self) -> int:
        seqs = [int(match.group(1)) for path in self.directory.iterdir()
                if (match := ID_PATTERN.match(path.stem))]
        return max(seqs, default=0) + 1

    def _payload_path(self, snapshot_id: str) -> Path:
        return self.directory / f"{snapshot_id}.snap"

    def _sidecar_path(self, snapshot_id: str) -> Path:
        return self.directory / f"{snapshot_id}.json"


def _as_dict(info: SnapshotInfo) -> dict[str, Any]:
    return {"id": info.id, "name": info.name, "sha256": info.sha256, "size": info.size,
            "created": info.created, "log_position": info.log_position,
            "metadata": info.metadata}


def _read_sidecar(path: Path) -> SnapshotInfo | None:
    try:
        raw = json.loads(path.read_text("utf-8"))
        return SnapshotInfo(
            id=raw["id"], name=raw["name"], sha256=raw["sha256"], size=int(raw["size"]),
            created=float(raw["created"]), log_position=raw["log_position"],
            metadata=raw["metadata"],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # Skipped, not fatal: the service can still start from an older snapshot.
        logger.warning("ignoring unreadable snapshot sidecar %s: %s", path, exc)
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # The rename is durable only once the directory entry is on disk.
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
