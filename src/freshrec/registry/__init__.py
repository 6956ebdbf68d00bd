"""The model registry: dataset versions, model versions, and their checksummed artifacts."""

from freshrec.registry.datasets import (
    DatasetMismatch,
    DatasetVersion,
    dataset_version,
    read_dataset,
    verify_dataset,
)
from freshrec.registry.models import (
    ArtifactRef,
    MemoryModelRegistry,
    ModelRegistry,
    ModelVersion,
    SQLiteModelRegistry,
    load_artifact,
    previous_champion,
)
from freshrec.registry.snapshots import (
    LocalSnapshotStore,
    MemorySnapshotStore,
    SnapshotInfo,
    SnapshotStore,
)

__all__ = [
    "ArtifactRef",
    "DatasetMismatch",
    "DatasetVersion",
    "LocalSnapshotStore",
    "MemoryModelRegistry",
    "MemorySnapshotStore",
    "ModelRegistry",
    "ModelVersion",
    "SQLiteModelRegistry",
    "SnapshotInfo",
    "SnapshotStore",
    "dataset_version",
    "load_artifact",
    "previous_champion",
    "read_dataset",
    "verify_dataset",
]
