"""The model registry: snapshots of trained models, checksummed and written atomically."""

from freshrec.registry.snapshots import (
    LocalSnapshotStore,
    MemorySnapshotStore,
    SnapshotInfo,
    SnapshotStore,
)

__all__ = ["LocalSnapshotStore", "MemorySnapshotStore", "SnapshotInfo", "SnapshotStore"]
