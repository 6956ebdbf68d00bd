"""Service settings, read once from the environment (``FRESHREC_*``) or given by the CLI."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("freshrec-data")
    host: str = "127.0.0.1"
    port: int = 8000
    admin_key: str | None = None
    """Registered with the admin scope at start (``FRESHREC_ADMIN_KEY``); never logged."""
    max_body_bytes: int = 16 * 1024 * 1024
    max_batch: int = 10_000
    max_k: int = 500
    retrain_every_events: int = 50_000
    """Start a background retraining after this many new events..."""
    retrain_interval_s: float = 3600.0
    """...or after this long, whichever comes first (if anything arrived)."""
    min_train_events: int = 100
    snapshot_interval_s: float = 300.0
    """Snapshot the engine this often if anything changed..."""
    snapshot_every_events: int = 20_000
    """...or after this many new events, whichever comes first: a restart replays at most
    about this many events, a few seconds' work (see bench/recovery.py)."""
    learner_poll_s: float = 0.005
    """How often the learner looks for records another process committed (its own
    commits wake it at once)."""
    read_wait_s: float = 1.0
    """How long a read waits for the learner to reach what was acknowledged before it
    answers from the model as it is (counted in freshrec_reads_behind_total)."""
    impression_retention_s: float = 7200.0
    """How long the log keeps what requests showed (impression records): twice the
    rankers' hour of learning from one, so a restore from the oldest snapshot kept
    still finds what it must replay. Older ones go (every minute)."""
    snapshots_kept: int = 3
    settle_interval_s: float = 0.5
    """How often the background worker looks for work: trainings to start or conclude,
    snapshots, an erasure's rebuild (the learner re-solves vectors itself, by position)."""
    training_threads: int = 1
    """CPU threads a background training may use, so serving keeps its latency."""
    gate_tolerance: float = 0.02
    """A candidate may score this much (relative) below the champion and still replace it."""
    holdout_fraction: float = 0.1
    """The newest share of events a candidate is evaluated on (and not trained on)."""
    training_niceness: int = 10
    """How much lower the training process's CPU priority is than the server's."""
    keep_refused_artifacts: int = 3
    """Refused candidates whose model files are kept (older ones are deleted)."""
    training_isolation: str = "process"
    """"process" (embedded stores: a child process at lower priority) or "thread"."""
    drift_window: int = 5000
    """Events in the drift monitor's reference and current windows."""
    drift_check_s: float = 5.0
    public_docs: bool = True
    """Serve /docs and /openapi.json without a key (they describe the API, hold no data)."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = env.get(f"FRESHREC_{spec.name.upper()}")
            if raw is None:
                continue
            values[spec.name] = _convert(spec.name, raw, spec.type)
        settings = cls(**values)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def _convert(name: str, raw: str, kind: Any) -> Any:
    text = str(kind)
    try:
        if "Path" in text:
            return Path(raw)
        if "bool" in text:
            if raw.lower() not in {"1", "0", "true", "false", "yes", "no"}:
                raise ValueError(raw)
            return raw.lower() in {"1", "true", "yes"}
        if "int" in text:
            return int(raw)
        if "float" in text:
            return float(raw)
    except ValueError:
        raise ValueError(f"FRESHREC_{name.upper()}={raw!r} is not a valid {text}") from None
    return raw
