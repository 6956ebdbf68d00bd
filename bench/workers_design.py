"""The numbers that choose how ``serve --workers N`` gets the model state (issue 9, item 3).

    .venv/bin/python bench/workers_design.py              # about 5 minutes on 2 cores
    .venv/bin/python bench/workers_design.py --events 3000 --datasets retail   # quicker

Three designs compete: every worker a full replica that applies the log itself, one
learner publishing the whole state (shared memory / mmap / a pickle), or one learner
publishing a delta stream. On Online Retail II and MovieLens small, each fitted on the
first half of its events exactly as ``freshrec replay`` fits (``build_plan``), this
measures:

* apply: the learner's cost per event (as measured before flushes moved into learn_one),
  split into ``learn_one``, the user's ALS fold-in that the request path does today,
  and the item micro-batch (amortised), with a request before each step of the
  stream so the rankers learn from impressions as in the replay;
* state: the snapshot's size, pickle dump and load times, growth with the log, and
  an inventory of ``ModelState`` (flat numpy arrays that could live in shared memory
  as they are, versus many small arrays and Python objects that need a rewrite);
* delta: what one event changes (bytes of changed array elements per component,
  diffing every array of the state around sampled events);
* the SQLite WAL log: commit -> visible latency in a second process that polls, the
  cost of a poll, and reading the committed position per request from an mmap'd
  counter versus a SQLite query (read-your-writes across workers);
* impressions: what a request would log for the rankers to learn the same thing,
  the log growth at 500 requests/s and the alternatives;
* memory: RSS of one replica restored from the retail snapshot in a fresh process,
  and what a forked replica owns privately after it starts working.

The machine is small and shared: the script says so in its output and reports
medians; absolute figures move with the load average, ratios much less.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import mmap
import multiprocessing
import os
import pickle
import subprocess
import sys
import tempfile
import time
import types
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from rich.console import Console
from threadpoolctl import threadpool_limits

from _load import percentiles
from _server import Report, header
from freshrec._sqlite import SQLiteDatabase
from freshrec.config import EngineConfig
from freshrec.engine import Engine
from freshrec.evaluation.datasets import DatasetSource
from freshrec.evaluation.memory import current_rss_mb
from freshrec.evaluation.plan import ReplayPlan, Step, build_plan
from freshrec.log.sqlite import SQLiteEventLog
from freshrec.models.features import ItemSide, Signals, candidate_features, user_context
from freshrec.models.state import ModelState
from freshrec.records import Event

Array = np.ndarray[Any, Any]
REQUESTS_PER_S = 500
INGEST_PER_S = 1_000
"""The load of the issue's mixed row: 500 recommendations/s while ingesting 1,000 events/s."""
WORKERS = (1, 2, 4, 8)
TOP_K = 10
POLL_INTERVALS_S = (0.001, 0.005)
COUNTER_SLOTS = 64
"""One slot per worker in the committed-position file: each worker writes only its own
slot (no cross-process race), readers take the maximum."""
MB = 2**20


def now_ns() -> int:
    # CLOCK_MONOTONIC is one clock for every process of the machine.
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def p50_p99_us(durations_ns: list[int] | Array) -> tuple[float, float]:
    p50, p99 = percentiles(np.asarray(durations_ns, dtype=np.float64) / 1e9, (50, 99))
    return p50 * 1e3, p99 * 1e3


def median_of(repeats: int, work: Callable[[], object]) -> tuple[float, Any]:
    """Median seconds of ``repeats`` runs of ``work``, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return float(np.median(times)), result


# -- walking the state -----------------------------------------------------------------
LEAVES = (int, float, complex, str, bytes, bool, type(None), np.generic)
OPAQUE = (np.random.Generator, types.ModuleType, types.FunctionType, types.MethodType, type)
"""Not model data (random streams, modules, functions): counted, never descended into."""


@dataclass
class Census:
    """What one component of the state is made of."""

    arrays: int = 0
    array_bytes: int = 0
    largest_array: int = 0
    objects: int = 0
    """Python objects other than arrays: containers, instances, and their elements."""
    object_bytes: int = 0
    """Approximate (``sys.getsizeof`` of each, elements of flat containers estimated
    from the first)."""


def _is_leafy(value: object) -> bool:
    return isinstance(value, LEAVES) or (
        isinstance(value, tuple) and all(isinstance(part, LEAVES) for part in value))


def _first_present(values: Iterator[object]) -> object:
    """The first element that is not None (a list of records may start with gaps)."""
    return next((value for value in values if value is not None), None)


def _children(obj: object) -> Iterator[tuple[str, object]]:
    """(path step, child) of a container or instance; flat containers yield nothing."""
    if isinstance(obj, dict):
        first = next(iter(obj.items()), None)
        if first is not None and not (_is_leafy(first[0])
                                      and _is_leafy(_first_present(iter(obj.values())))):
            for key, value in obj.items():
                yield f"[{key}]", value
    elif isinstance(obj, list | tuple | deque):
        if obj and not _is_leafy(_first_present(iter(obj))):
            for position, value in enumerate(obj):
                yield f"[{position}]", value
    elif isinstance(obj, set | frozenset):
        return
    else:
        names = list(getattr(obj, "__dict__", {}))
        for cls in type(obj).__mro__:
            slots = getattr(cls, "__slots__", ())
            names.extend([slots] if isinstance(slots, str) else slots)
        for name in dict.fromkeys(names):
            if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                yield f".{name}", getattr(obj, name)


def _flat_size(obj: object) -> tuple[int, int]:
    """(objects, bytes) of a container of leaves, estimated from its first element."""
    size = sys.getsizeof(obj)
    if isinstance(obj, dict) and obj:
        key, value = next(iter(obj.items()))
        return 1 + 2 * len(obj), size + len(obj) * (sys.getsizeof(key) + sys.getsizeof(value))
    if isinstance(obj, list | tuple | deque | set | frozenset) and obj:
        first = _first_present(iter(obj))
        return 1 + len(obj), size + len(obj) * sys.getsizeof(first)
    return 1, size


def walk(obj: object, path: str, on_array: Callable[[str, Array], None],
         census: Census | None, seen: set[int]) -> None:
    """Visit every array under ``obj`` (each once), counting what it is made of."""
    stack = [(path, obj)]
    while stack:
        where, value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, np.ndarray):
            on_array(where, value)
            if census is not None:
                census.arrays += 1
                census.array_bytes += value.nbytes
                census.largest_array = max(census.largest_array, value.nbytes)
            continue
        if census is not None:
            objects, size = _flat_size(value)
            census.objects += objects
            census.object_bytes += size
        if isinstance(value, LEAVES + OPAQUE):
            continue
        stack.extend((where + step, child) for step, child in _children(value))


def components(engine: Engine) -> list[tuple[str, object]]:
    """The parts of a replica's model, in the order they are walked (shared parts once)."""
    state = engine.state
    parts: list[tuple[str, object]] = [
        (name, getattr(state, name)) for name in state.__dataclass_fields__
        if name != "config"]
    parts.append(("_item_side (read-path cache)", getattr(state, "_item_side", None)))
    learner = engine.learner
    parts += [("learner.impressions (not in snapshots)", learner.impressions),
              ("learner.first_visits (not in snapshots)", learner.first_visits)]
    return parts


def array_paths(state: ModelState) -> dict[str, Array]:
    """Every array of the model state by its path (the read-path cache left out)."""
    found: dict[str, Array] = {}

    def keep(where: str, array: Array) -> None:
        found[where] = array

    seen: set[int] = set()
    for name in state.__dataclass_fields__:
        walk(getattr(state, name), name, keep, None, seen)
    return found


def component_of(path: str) -> str:
    """``users.profiles[12].items`` -> ``users.profiles[].items``: one row per kind."""
    out, depth = [], 0
    for char in path:
        if char == "[":
            depth += 1
            if depth == 1:
                out.append("[]")
        elif char == "]":
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


def changed_positions(old: Array | None, new: Array) -> Array:
    """Flat indices of ``new`` a delta would carry: changed elements, and filled new ones."""
    flat = new.reshape(-1)
    if old is None:
        return np.flatnonzero(_filled(flat))
    if old.shape == new.shape and old.dtype == new.dtype:
        if np.array_equal(old, new, equal_nan=old.dtype.kind == "f"):
            return _NOTHING
        return np.flatnonzero(_differ(old.reshape(-1), flat))
    if old.ndim == new.ndim and old.shape[1:] == new.shape[1:]:
        # Grown along its first axis: the old rows are a prefix of the new flat array.
        common = min(old.shape[0], new.shape[0]) * int(np.prod(new.shape[1:], dtype=np.int64))
        return np.flatnonzero(np.concatenate([
            _differ(old.reshape(-1)[:common], flat[:common]), _filled(flat[common:])]))
    return np.arange(flat.shape[0])


_NOTHING = np.zeros(0, dtype=np.int64)


def _differ(old: Array, new: Array) -> Array:
    differ = old != new
    if old.dtype.kind == "f":
        differ &= ~(np.isnan(old) & np.isnan(new))
    return np.asarray(differ)


def _filled(values: Array) -> Array:
    return (~np.isnan(values) & (values != 0)) if values.dtype.kind == "f" else values != 0


@dataclass
class Delta:
    """What one step changed: bytes per kind of array, and the change itself."""

    bytes_by_kind: dict[str, int]
    changes: list[tuple[str, Array, Array]]
    """(array path, flat indices, new values)."""

    def encoded(self) -> int:
        """Bytes of the change pickled with its addressing (path, int32 indices, values)."""
        return len(pickle.dumps([(path, index.astype(np.int32), values)
                                 for path, index, values in self.changes],
                                protocol=pickle.HIGHEST_PROTOCOL))


class DeltaRecorder:
    """Diffs every array of the state around one step: what a delta stream would send."""

    def __init__(self) -> None:
        self.per_step: list[dict[str, int]] = []
        self.encoded: list[int] = []
        self.apply_ns: list[int] = []
        """A reader's cost of applying the step's delta: the array writes only (no Python
        structures, no decoding), so a lower bound."""

    def around(self, state: ModelState, step: Callable[[], None]) -> None:
        before = {path: array.copy() for path, array in array_paths(state).items()}
        step()
        after = array_paths(state)
        delta = Delta({}, [])
        for path, array in after.items():
            index = changed_positions(before.get(path), array)
            if index.size:
                kind = component_of(path)
                delta.bytes_by_kind[kind] = (delta.bytes_by_kind.get(kind, 0)
                                             + index.size * array.itemsize)
                delta.changes.append((path, index, array.reshape(-1)[index]))
        self.per_step.append(delta.bytes_by_kind)
        self.encoded.append(delta.encoded())
        started = now_ns()
        for path, index, values in delta.changes:
            after[path].put(index, values)
        self.apply_ns.append(now_ns() - started)

    def kinds(self) -> list[str]:
        return sorted({kind for change in self.per_step for kind in change})

    def totals(self) -> Array:
        return np.array([sum(change.values()) for change in self.per_step], dtype=np.float64)


# -- a dataset, fitted ---------------------------------------------------------------------
@dataclass
class Fitted:
    name: str
    plan: ReplayPlan
    engine: Engine
    fit_s: float


def fitted(name: str, train_fraction: float = 0.5) -> Fitted:
    plan = build_plan(DatasetSource(name).load(), train_fraction=train_fraction)
    engine = Engine(EngineConfig(num_threads=1))
    started = time.perf_counter()
    engine.fit(plan.training)
    return Fitted(name, plan, engine, time.perf_counter() - started)


# -- applying the stream ----------------------------------------------------------------
@dataclass
class ApplyRun:
    """Per-event costs of the learner over the first ``events`` events of the stream."""

    learn_ns: list[int] = field(default_factory=list)
    fold_ns: list[int] = field(default_factory=list)
    flush_ns: list[int] = field(default_factory=list)
    events: int = 0
    requests: int = 0
    candidates: list[int] = field(default_factory=list)
    lessons: int = 0
    """Events the rankers learned from (the chosen item was among the shown candidates)."""
    lessons_in_top_k: int = 0
    recompute_ns: list[int] = field(default_factory=list)
    """Computing an impression's features again at learn time, from its candidate ids."""
    kept_features: list[tuple[int, Array]] = field(default_factory=list)
    """(user, features) of some impressions, for the float16 check."""
    event_delta: DeltaRecorder = field(default_factory=DeltaRecorder)
    flush_delta: DeltaRecorder = field(default_factory=DeltaRecorder)
    events_per_flush: list[int] = field(default_factory=list)

    @property
    def apply_ns(self) -> Array:
        return np.asarray(self.learn_ns, dtype=np.int64) + np.asarray(self.fold_ns)

    def flush_us_per_event(self) -> float:
        if not self.flush_ns or not self.events_per_flush:
            return 0.0
        return float(np.mean(self.flush_ns)) / 1e3 / float(np.mean(self.events_per_flush))

    def mean_us(self) -> float:
        """Everything the learner does, per event: the event, the user, the item batch."""
        return float(np.mean(self.apply_ns)) / 1e3 + self.flush_us_per_event()

    def events_per_core_s(self) -> float:
        return 1e6 / self.mean_us()


def apply_stream(engine: Engine, steps: list[Step], events: int, delta_samples: int,
                 ) -> ApplyRun:
    """Request-then-learn through the stream as the replay does, timing the learner.

    Timed per event: ``learn_one`` (counts, profile, trending, rankers from the last
    impression) and the user's fold-in at once (today it waits for their next
    request, which must stop writing). The item micro-batch is timed per flush.
    Sampled events are diffed instead of timed (the copies would pollute the cache).
    """
    run = ApplyRun()
    learner = engine.learner
    state = engine.state
    batch = state.config.item_batch_size
    every = max(1, events // max(delta_samples, 1))
    shown: dict[str, set[str]] = {}
    since_flush = 0
    for step in steps:
        for item in step.items:
            engine.add_item(item)
        if not step.events:
            continue
        user_id = step.events[0].user
        answer = engine.recommend(user_id, k=TOP_K)
        run.requests += 1
        shown[user_id] = {rec.item for rec in answer}
        index = state.users.get(user_id)
        impression = learner.impressions.get(index) if index is not None else None
        if impression is not None:
            run.candidates.append(int(impression.candidates.size))
            if len(run.kept_features) < 300 and run.requests % 3 == 0:
                run.kept_features.append((index, impression.features))
        for event in step.events:
            if run.events >= events:
                return run
            _count_lesson(run, engine, event, shown)
            sampled = run.events % every == 0 and len(run.event_delta.per_step) < delta_samples
            if sampled:
                run.event_delta.around(state, functools.partial(_apply, engine, event))
            else:
                started = now_ns()
                engine.learn_one(event)
                learned = now_ns()
                _fold_in(engine, event.user)
                run.learn_ns.append(learned - started)
                run.fold_ns.append(now_ns() - learned)
            run.events += 1
            since_flush += 1
            if len(learner.dirty_items) >= batch:
                if len(run.flush_delta.per_step) < 3:
                    run.flush_delta.around(state, learner.flush_items)
                else:
                    started = now_ns()
                    with engine.lock:
                        learner.flush_items()
                    run.flush_ns.append(now_ns() - started)
                run.events_per_flush.append(since_flush)
                since_flush = 0
    return run


def _apply(engine: Engine, event: Event) -> None:
    engine.learn_one(event)
    _fold_in(engine, event.user)


def _fold_in(engine: Engine, user_id: str) -> None:
    with engine.lock:
        index = engine.state.users.get(user_id)
        if index is not None:
            engine.learner.fold_in_user(index)


def _count_lesson(run: ApplyRun, engine: Engine, event: Event,
                  shown: dict[str, set[str]]) -> None:
    """Would the rankers learn from this event, and would a top-k-only log still teach it?"""
    state = engine.state
    index = state.users.get(event.user)
    impression = engine.learner.impressions.get(index) if index is not None else None
    item = state.items.get(event.item)
    if impression is None or item is None or impression.cold:
        return
    if event.timestamp - impression.timestamp > state.config.impression_ttl:
        return
    if not np.any(impression.candidates == item):
        return
    run.lessons += 1
    run.lessons_in_top_k += event.item in shown.get(event.user, set())
    if run.lessons % 5 == 0 and len(run.recompute_ns) < 300:
        started = now_ns()
        signals = Signals(state, user_context(state, event.user))
        candidate_features(signals, impression.candidates)
        run.recompute_ns.append(now_ns() - started)


# -- the state as a whole --------------------------------------------------------------
@dataclass
class StateCost:
    snapshot_mb: float
    dumps_s: float
    loads_s: float
    events: int
    items: int
    users: int


def state_cost(engine: Engine, repeats: int = 3) -> StateCost:
    dumps_s, payload = median_of(repeats, engine.snapshot)
    loads_s, _ = median_of(repeats, lambda: Engine.restore(payload))
    state = engine.state
    return StateCost(len(payload) / MB, dumps_s, loads_s, state.events_seen, len(state.items),
                     len(state.users))


def inventory_rows(engine: Engine) -> tuple[list[list[str]], dict[str, float]]:
    """One row per component: arrays vs Python objects, and whether it can be mapped."""
    rows, totals = [], {"flat": 0.0, "rewrite": 0.0}
    seen: set[int] = set()
    for name, part in components(engine):
        census = Census()
        walk(part, name, lambda where, array: None, census, seen)
        pickled = len(pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)) / MB
        # Flat: a handful of arrays and no per-user or per-item Python objects, so the
        # arrays could be placed in a shared segment as they are.
        flat = census.arrays <= 16 and census.objects <= 200
        mb = (census.array_bytes + census.object_bytes) / MB
        if "not in snapshots" not in name and "cache" not in name:
            totals["flat" if flat else "rewrite"] += mb
        verdict = "flat: shareable as is" if flat else "objects: rewrite to share"
        if census.arrays == 0 and census.objects <= 20:
            verdict = "scalars / small"
        rows.append([name, f"{census.arrays:,}", f"{census.array_bytes / MB:.2f}",
                     f"{census.largest_array / MB:.2f}", f"{census.objects:,}",
                     f"{census.object_bytes / MB:.2f}", f"{pickled:.2f}", verdict])
    return rows, totals


def flat_publish_ms(engine: Engine) -> tuple[float, float]:
    """(MB, ms) of copying the flat arrays (ALS, trending, counts) into one shared block."""
    state = engine.state
    als = state.als
    arrays = [als.user_factors, als.item_factors, als.item_prior, als.has_user, als.has_item,
              state.trending.counts, *(d._raw for d in state.trending.decayed),
              state.cooccurrence.occurrences, state.items.available, state.items.first_seen,
              state.items.first_event, state.ranker.weights, state.discovery_ranker.weights,
              state.cold_ranker.weights]
    total = sum(a.nbytes for a in arrays)
    block = bytearray(total)

    def publish() -> None:
        offset = 0
        for array in arrays:
            view = np.frombuffer(block, dtype=np.uint8, count=array.nbytes, offset=offset)
            view[:] = np.ascontiguousarray(array).view(np.uint8).reshape(-1)
            offset += array.nbytes

    seconds, _ = median_of(5, publish)
    return total / MB, seconds * 1e3


# -- the log: commit -> visible in another process --------------------------------------
class CommittedPositions:
    """Last committed log position per worker, in a small shared file (a prototype).

    A worker writes its slot after its commit and before it answers; a reader's
    bound for read-your-writes is the maximum over the slots. One aligned 8-byte
    store per write, so a reader never sees half a position.
    """

    def __init__(self, path: Path) -> None:
        if not path.exists():
            path.write_bytes(bytes(8 * COUNTER_SLOTS))
        self._file = path.open("r+b")
        self._map = mmap.mmap(self._file.fileno(), 8 * COUNTER_SLOTS)
        self.slots = np.frombuffer(self._map, dtype=np.int64)

    def publish(self, slot: int, position: int) -> None:
        self.slots[slot] = position

    def committed(self) -> int:
        return int(self.slots.max())

    def close(self) -> None:
        del self.slots
        self._map.close()
        self._file.close()


def _poll_reader(log_path: str, counter_path: str, source: str, interval_s: float,
                 expected: int, conn: Connection) -> None:
    """In a second process: poll until ``expected`` new positions were seen."""
    log = SQLiteEventLog(log_path)
    counter = CommittedPositions(Path(counter_path))
    current = log.last_position if source == "sqlite" else counter.committed
    seen = current()
    conn.send(seen)
    visible: dict[int, int] = {}
    polls: list[int] = []
    deadline = time.monotonic() + 120
    while len(visible) < expected and time.monotonic() < deadline:
        started = now_ns()
        position = current()
        polled = now_ns()
        polls.append(polled - started)
        for new in range(seen + 1, position + 1):
            visible[new] = polled
        seen = max(seen, position)
        time.sleep(interval_s)
    conn.send((visible, polls))
    log.close()
    counter.close()


@dataclass
class Visibility:
    source: str
    interval_ms: float
    ack_to_visible_ms: tuple[float, float]
    poll_us: tuple[float, float]
    commit_ms: tuple[float, float]


def visibility(folder: Path, events: list[Event], source: str, interval_s: float,
               appends: int) -> Visibility:
    """One process appends single events (acks), a second one polls for them."""
    log_path, counter_path = folder / "events.sqlite", folder / "committed.bin"
    log = SQLiteEventLog(log_path)
    counter = CommittedPositions(counter_path)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    reader = context.Process(target=_poll_reader, args=(
        str(log_path), str(counter_path), source, interval_s, appends, theirs))
    reader.start()
    ours.recv()  # the reader is polling
    rng = np.random.default_rng(0)
    acks: dict[int, int] = {}
    commits = []
    base = log.last_position()
    for number in range(appends):
        event = msgspec.structs.replace(events[number % len(events)],
                                        id=f"vis-{source}-{interval_s}-{base}-{number}")
        started = now_ns()
        position = log.append([event]).positions[0]
        assert position is not None
        counter.publish(0, position)  # before the answer goes out: this is the ack
        acks[position] = now_ns()
        commits.append(acks[position] - started)
        time.sleep(float(rng.uniform(0.005, 0.015)))
    visible, polls = ours.recv()
    reader.join(timeout=30)
    log.close()
    counter.close()
    lags = [visible[p] - acks[p] for p in acks if p in visible]
    return Visibility(source, interval_s * 1e3,
                      tuple(v / 1e3 for v in p50_p99_us(lags)),  # type: ignore[arg-type]
                      p50_p99_us(polls),
                      tuple(v / 1e3 for v in p50_p99_us(commits)))  # type: ignore[arg-type]


def log_read_costs(folder: Path, events: list[Event]) -> dict[str, float]:
    """µs of a committed-position read (both ways) and of reading rows to apply them."""
    log = SQLiteEventLog(folder / "reads.sqlite")
    for start in range(0, 20_000, 1000):
        log.append([msgspec.structs.replace(events[i % len(events)], id=f"read-{i}")
                    for i in range(start, start + 1000)])
    counter = CommittedPositions(folder / "reads.bin")
    counter.publish(1, log.last_position())
    out = {}
    for name, call in (("sqlite", log.last_position), ("mmap", counter.committed)):
        timings = []
        for _ in range(5000):
            started = now_ns()
            call()
            timings.append(now_ns() - started)
        out[name] = float(np.median(timings)) / 1e3
    seconds, _ = median_of(3, lambda: sum(1 for _ in log.iterate(after=0)))
    out["read_row"] = seconds / 20_000 * 1e6
    one = []
    for after in range(1000, 6000):
        started = now_ns()
        log.read(after=after, limit=1)
        one.append(now_ns() - started)
    out["read_one"] = float(np.median(one)) / 1e3
    log.close()
    counter.close()
    return out


# -- impressions -----------------------------------------------------------------------
@dataclass
class ImpressionForm:
    name: str
    bytes_per_record: float
    reproducible: str


def impression_forms(run: ApplyRun, negatives: int, n_features: int) -> list[ImpressionForm]:
    candidates = float(np.median(run.candidates)) if run.candidates else 0.0
    head = 16 + 12 + 8 + 8  # request id, user id, clock, state position it was served from
    return [
        ImpressionForm("today: every candidate, int64 ids + float32 features",
                       head + candidates * (8 + 4 * n_features),
                       "exact: the rankers learn what was shown"),
        ImpressionForm("every candidate, int32 ids + float16 features",
                       head + candidates * (4 + 2 * n_features),
                       "exact if live learning reads the same rounded rows"),
        ImpressionForm(f"top-{TOP_K} shown + {negatives} sampled negatives, float32",
                       head + (TOP_K + negatives) * (4 + 4 * n_features),
                       "exact, but teaches only when the choice was in the top-k"),
        ImpressionForm("candidate ids only (int32), features recomputed at learn time",
                       head + candidates * 4,
                       "deterministic in replay, features as of the learn time"),
    ]


def float16_effect(engine: Engine, kept: list[tuple[int, Array]]) -> tuple[float, float]:
    """(median relative rounding error, share of top-k lists unchanged) with float16 rows."""
    errors, same = [], 0
    for _, features in kept:
        rounded = features.astype(np.float16).astype(np.float32)
        scale = np.maximum(np.abs(features), 1e-6)
        errors.append(float(np.median(np.abs(rounded - features) / scale)))
        exact = engine.state.ranker.score(features.astype(np.float64))
        approx = engine.state.ranker.score(rounded.astype(np.float64))
        same += bool(np.array_equal(np.argsort(-exact, kind="stable")[:TOP_K],
                                    np.argsort(-approx, kind="stable")[:TOP_K]))
    return float(np.median(errors)) if errors else 0.0, same / max(len(kept), 1)


def impression_write_s(folder: Path, size: int, records: int = REQUESTS_PER_S,
                       per_commit: int = 25) -> float:
    """Seconds to commit one second's worth of impressions of ``size`` bytes to SQLite."""
    db = SQLiteDatabase(folder / f"impressions-{size}.sqlite",
                        "CREATE TABLE IF NOT EXISTS impressions (position INTEGER PRIMARY KEY, "
                        "payload BLOB NOT NULL);")
    payload = os.urandom(max(size, 1))
    started = time.perf_counter()
    for _ in range(0, records, per_commit):
        with db.transaction() as conn:
            conn.executemany("INSERT INTO impressions (payload) VALUES (?)",
                             [(payload,)] * per_commit)
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


# -- a replica's memory, in a fresh process -------------------------------------------
def replica_probe(snapshot: Path, events_path: Path) -> None:
    """Print the RSS of a process holding one replica, and what a fork of it owns."""
    threadpool_limits(1)
    before = current_rss_mb()
    engine = Engine.restore(snapshot.read_bytes())
    events: list[Event] = pickle.loads(events_path.read_bytes())
    users = [user for user in engine.state.users.ids[:200] if user]
    for user in users:
        engine.recommend(user)
    loaded = current_rss_mb()
    gc.collect()
    gc.freeze()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a replica forked from the loaded one, then serving and learning
        os.close(read)
        for event in events:
            engine.learn_one(event)
        engine.learner.flush_items()
        for user in users:
            engine.recommend(user)
        rollup = _smaps_rollup()
        os.write(write, json.dumps(rollup).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        forked = json.loads(pipe.read())
    os.waitpid(child, 0)
    print(json.dumps({"before": before, "loaded": loaded, "forked": forked}))


def _smaps_rollup() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        if value.strip().endswith("kB"):
            out[name] = int(value.split()[0]) / 1024
    return out


def replica_memory(engine: Engine, stream: list[Event], folder: Path) -> dict[str, Any]:
    snapshot, events_path = folder / "replica.snapshot", folder / "replica.events"
    snapshot.write_bytes(engine.snapshot())
    events_path.write_bytes(pickle.dumps(stream))
    done = subprocess.run([sys.executable, __file__, "--replica-probe", str(snapshot),
                           str(events_path)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"}, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# -- the run ---------------------------------------------------------------------------
@dataclass
class DatasetResult:
    name: str
    fit_s: float
    run: ApplyRun
    costs: list[StateCost]
    inventory: list[list[str]]
    shares: dict[str, float]
    flat_publish: tuple[float, float]
    item_side_ms: float
    float16: tuple[float, float]
    forms: list[ImpressionForm]


def measure_dataset(name: str, events: int, delta_samples: int,
                    console: Console) -> tuple[DatasetResult, Fitted]:
    quarter = fitted(name, 0.25)
    early = state_cost(quarter.engine, repeats=1)
    del quarter
    half = fitted(name)
    console.print(f"{name}: fitted on {half.plan.n_train_events:,} events in {half.fit_s:.0f}s")
    engine = half.engine
    fitted_cost = state_cost(engine)
    run = apply_stream(engine, half.plan.steps, events, delta_samples)
    after = state_cost(engine, repeats=1)
    inventory, shares = inventory_rows(engine)
    item_side_s, _ = median_of(5, lambda: ItemSide(engine.state))
    config = engine.state.config
    n_features = engine.state.samples.features.shape[1]
    result = DatasetResult(name, half.fit_s, run, [early, fitted_cost, after], inventory,
                           shares, flat_publish_ms(engine), item_side_s * 1e3,
                           float16_effect(engine, run.kept_features),
                           impression_forms(run, config.ranker_negatives, n_features))
    console.print(f"{name}: applied {run.events:,} events ({run.requests:,} requests), "
                  f"{run.events_per_core_s():,.0f} events/s of one core")
    return result, half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["retail", "movielens"],
                        choices=["retail", "movielens"])
    parser.add_argument("--events", type=int, default=6000,
                        help="stream events applied per dataset (timed)")
    parser.add_argument("--delta-events", type=int, default=100,
                        help="events diffed array by array per dataset")
    parser.add_argument("--appends", type=int, default=300,
                        help="single-event commits per visibility measurement")
    parser.add_argument("--replica-probe", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replica_probe:
        replica_probe(*args.replica_probe)
        return
    threadpool_limits(1)  # as `freshrec serve` runs: one BLAS thread
    console = Console(width=150)
    header(console, "freshrec design benchmark: how N workers get the model state")
    console.print(f"[yellow]note:[/] {os.cpu_count()} vCPUs shared with other work (load "
                  f"average {os.getloadavg()[0]:.1f}): medians are reported; p99 columns "
                  "carry the noise of the machine.")
    with tempfile.TemporaryDirectory(prefix="freshrec-bench-workers-") as folder:
        work = Path(folder)
        sample_events = DatasetSource("retail").load().events[:5000]
        visibilities = []
        for source in ("sqlite", "mmap"):
            for interval in POLL_INTERVALS_S:
                place = work / f"{source}-{interval}"
                place.mkdir()
                visibilities.append(visibility(place, sample_events, source, interval,
                                               args.appends))
        reads = log_read_costs(work, sample_events)
        results, memory = [], None
        for name in args.datasets:
            result, half = measure_dataset(name, args.events, args.delta_events, console)
            results.append(result)
            if name == "retail":
                stream = [e for step in half.plan.steps[2000:] for e in step.events][:2000]
                memory = replica_memory(half.engine, stream, work)
            del half
            gc.collect()
        writes = {form.name: impression_write_s(work, int(form.bytes_per_record))
                  for form in results[0].forms}
    show(console, results, visibilities, reads, memory, writes)


# -- reporting -------------------------------------------------------------------------
def show(console: Console, results: list[DatasetResult], visibilities: list[Visibility],
         reads: dict[str, float], memory: dict[str, Any] | None,
         writes: dict[str, float]) -> None:
    for result in results:
        show_dataset(console, result)
    Report("workers-log", "The SQLite WAL log seen from a second process",
           ["position source", "poll interval ms", "ack -> visible p50 ms",
            "ack -> visible p99 ms", "one poll p50 µs", "one poll p99 µs",
            "commit (fsync) p50 ms", "commit p99 ms"],
           [[v.source, f"{v.interval_ms:g}", f"{v.ack_to_visible_ms[0]:.2f}",
             f"{v.ack_to_visible_ms[1]:.2f}", f"{v.poll_us[0]:.1f}", f"{v.poll_us[1]:.1f}",
             f"{v.commit_ms[0]:.2f}", f"{v.commit_ms[1]:.2f}"] for v in visibilities],
           [f"sqlite: the reader polls `last_position()` of its own connection; mmap: it "
            f"polls the committed-position file the writer updates after each commit. "
            f"Per request, reading the committed position costs {reads['sqlite']:.1f} µs "
            f"from SQLite and {reads['mmap']:.2f} µs from the mmap file "
            f"({COUNTER_SLOTS} slots, max over them). Reading the log to apply it costs "
            f"{reads['read_row']:.1f} µs per row in pages, {reads['read_one']:.0f} µs for a "
            "one-row poll."]).show(console)
    show_impressions(console, results[0], writes)
    if memory is not None:
        forked = memory["forked"]
        Report("workers-memory", "Memory of one full replica (retail, restored snapshot)",
               ["interpreter + imports MB", "one replica loaded MB", "forked replica: RSS MB",
                "forked: private MB", "forked: shared MB", "forked: PSS MB"],
               [[f"{memory['before']:.0f}", f"{memory['loaded']:.0f}",
                 f"{forked.get('Rss', 0):.0f}",
                 f"{forked.get('Private_Clean', 0) + forked.get('Private_Dirty', 0):.0f}",
                 f"{forked.get('Shared_Clean', 0) + forked.get('Shared_Dirty', 0):.0f}",
                 f"{forked.get('Pss', 0):.0f}"]],
               ["A fresh process restores the snapshot and answers 200 requests; then it "
                "forks (after gc.freeze) and the child applies 2,000 stream events and "
                "answers 200 more: private MB is what each extra forked replica costs."]
               ).show(console)
    show_summary(console, results, visibilities, reads, memory)


def show_dataset(console: Console, result: DatasetResult) -> None:
    run = result.run
    learn, fold = p50_p99_us(run.learn_ns), p50_p99_us(run.fold_ns)
    total = p50_p99_us(run.apply_ns)
    flush = p50_p99_us(run.flush_ns) if run.flush_ns else (float("nan"),) * 2
    per_flush = float(np.median(run.events_per_flush)) if run.events_per_flush else 0
    Report(f"workers-apply-{result.name}",
           f"{result.name}: the learner's cost per event after a fit on the first half",
           ["part", "p50 µs", "p99 µs", "mean µs"],
           [["learn_one (counts, profile, rankers)", f"{learn[0]:.0f}", f"{learn[1]:.0f}",
             f"{np.mean(run.learn_ns) / 1e3:.0f}"],
            ["fold_in_user (today on the request path)", f"{fold[0]:.0f}", f"{fold[1]:.0f}",
             f"{np.mean(run.fold_ns) / 1e3:.0f}"],
            ["both, per event", f"{total[0]:.0f}", f"{total[1]:.0f}",
             f"{np.mean(run.apply_ns) / 1e3:.0f}"],
            [f"item micro-batch (per flush, every ~{per_flush:.0f} events)",
             f"{flush[0]:.0f}", f"{flush[1]:.0f}",
             f"{np.mean(run.flush_ns) / 1e3 if run.flush_ns else 0:.0f}"],
            ["all of it, amortised per event", "", "", f"{run.mean_us():.0f}"]],
           [f"{run.events:,} events of the stream, {run.requests:,} requests before its "
            f"steps, {run.lessons:,} ranker lessons; {run.events_per_core_s():,.0f} events/s "
            f"of one core. N full replicas at {INGEST_PER_S:,} events/s spend "
            + ", ".join(f"N={n}: {n * INGEST_PER_S * run.mean_us() / 1e6:.2f} cores"
                        for n in WORKERS) + "."]).show(console)
    costs = result.costs
    Report(f"workers-state-{result.name}", f"{result.name}: the whole state, published",
           ["state after", "events", "items", "users", "snapshot MB", "pickle dump ms",
            "pickle load ms"],
           [[label, f"{c.events:,}", f"{c.items:,}", f"{c.users:,}", f"{c.snapshot_mb:.1f}",
             f"{c.dumps_s * 1e3:.0f}", f"{c.loads_s * 1e3:.0f}"]
            for label, c in zip(("fit on 25%", "fit on 50%", f"50% + {run.events:,} applied"),
                                costs, strict=True)],
           [f"Growth: {_growth(costs[0], costs[1]):.2f} MB per 10,000 events. The flat "
            f"arrays (ALS, trending, counts, rankers) are {result.flat_publish[0]:.1f} MB and "
            f"copy into one shared block in {result.flat_publish[1]:.2f} ms; the read-path "
            f"cache (item-side signals) is rebuilt in {result.item_side_ms:.2f} ms."]
           ).show(console)
    Report(f"workers-inventory-{result.name}", f"{result.name}: what the state is made of",
           ["component", "arrays", "array MB", "largest MB", "Python objects", "object MB ~",
            "pickled MB", "shared memory"], result.inventory,
           [f"Flat, shareable as is: {result.shares['flat']:.1f} MB; needs a rewrite "
            f"(per-user/per-item objects): {result.shares['rewrite']:.1f} MB."]).show(console)
    show_delta(console, result)


def _growth(early: StateCost, later: StateCost) -> float:
    return (later.snapshot_mb - early.snapshot_mb) / max(later.events - early.events, 1) * 1e4


def show_delta(console: Console, result: DatasetResult) -> None:
    run = result.run
    delta, flush = run.event_delta, run.flush_delta
    per_flush = float(np.median(run.events_per_flush)) if run.events_per_flush else 1.0
    rows = []
    for kind in delta.kinds():
        values = np.array([change.get(kind, 0) for change in delta.per_step], dtype=float)
        rows.append([kind, "event", f"{np.mean(values > 0):.0%}", f"{np.median(values):.0f}",
                     f"{np.mean(values):.0f}", f"{values.max():.0f}"])
    for kind in flush.kinds():
        values = np.array([change.get(kind, 0) for change in flush.per_step], dtype=float)
        rows.append([kind, f"item batch / {per_flush:.0f}", "", "",
                     f"{np.mean(values) / per_flush:.0f}", f"{values.max():.0f}"])
    totals = delta.totals()
    batch = float(np.mean(flush.totals())) / per_flush if flush.per_step else 0.0
    mean = float(np.mean(totals)) + batch if totals.size else 0.0
    Report(f"workers-delta-{result.name}",
           f"{result.name}: what one event changes (a delta stream's payload)",
           ["array", "step", "events touching it", "p50 bytes", "mean bytes/event",
            "max bytes"], rows,
           [f"{len(delta.per_step)} events diffed array by array: "
            f"{np.median(totals):.0f} bytes of changed elements per event at the median, "
            f"{mean:.0f} on average with the item batch amortised (the event itself is ~80 "
            f"bytes in the log): {mean * INGEST_PER_S / MB:.2f} MB/s at {INGEST_PER_S:,} "
            f"events/s. Pickled with its addressing (path, indices, values): "
            f"{np.median(delta.encoded):.0f} bytes per event at the median. A reader applies "
            f"one event's delta in {_median_us(delta.apply_ns):.0f} µs (array writes only, "
            "without decoding or the Python structures the arrays imply: new dict keys, "
            "deque entries), against the learner's cost above."]).show(console)


def _median_us(durations_ns: list[int]) -> float:
    return float(np.median(durations_ns)) / 1e3 if durations_ns else float("nan")


def show_impressions(console: Console, result: DatasetResult, writes: dict[str, float]) -> None:
    run = result.run
    rows = []
    for form in result.forms:
        per_s = form.bytes_per_record * REQUESTS_PER_S
        retention = result_ttl_hours()
        rows.append([form.name, f"{form.bytes_per_record / 1024:.1f}",
                     f"{per_s / MB:.2f}", f"{per_s * 3600 * retention / 2**30:.1f}",
                     f"{per_s * 86400 / 2**30:.0f}", f"{writes.get(form.name, 0):.2f}",
                     form.reproducible])
    recompute = p50_p99_us(run.recompute_ns) if run.recompute_ns else (float("nan"),) * 2
    error, same = result.float16
    candidates = np.median(run.candidates) if run.candidates else 0
    Report("workers-impressions",
           f"Impression records ({result.name}): log growth at {REQUESTS_PER_S} requests/s",
           ["record", "KB/record", "MB/s", "GB per TTL (1 h)", "GB/day",
            f"SQLite s to commit 1 s ({REQUESTS_PER_S}, 25/commit)", "reproducibility"], rows,
           [f"{candidates:.0f} candidates per request at the median (p90 "
            f"{np.percentile(run.candidates, 90) if run.candidates else 0:.0f}). Of "
            f"{run.lessons:,} ranker lessons, {run.lessons_in_top_k / max(run.lessons, 1):.0%} "
            f"chose an item of the shown top-{TOP_K} (the rest were other candidates: a "
            f"top-k-only log loses them). float16 rows: median relative error {error:.1e}, "
            f"the linear ranker's top-{TOP_K} unchanged in {same:.0%} of requests. "
            f"Recomputing an impression's features at learn time: p50 {recompute[0]:.0f} µs, "
            f"p99 {recompute[1]:.0f} µs per lesson."]).show(console)


def result_ttl_hours() -> float:
    return EngineConfig().impression_ttl / 3600


def show_summary(console: Console, results: list[DatasetResult], visibilities: list[Visibility],
                 reads: dict[str, float], memory: dict[str, Any] | None) -> None:
    rows = []
    for result in results:
        run, cost = result.run, result.costs[1]
        total = p50_p99_us(run.apply_ns)
        delta = result.run.event_delta.totals()
        rows += [
            [result.name, "full replica: apply per event p50 / p99 µs",
             f"{total[0]:.0f} / {total[1]:.0f}"],
            [result.name, "full replica: events/s of one core (amortised)",
             f"{run.events_per_core_s():,.0f}"],
            [result.name, f"full replicas: cores spent learning at {INGEST_PER_S:,} events/s, "
             "N=2 / N=8", f"{2 * INGEST_PER_S * run.mean_us() / 1e6:.2f} / "
             f"{8 * INGEST_PER_S * run.mean_us() / 1e6:.2f}"],
            [result.name, "whole state: snapshot MB, dump + load ms",
             f"{cost.snapshot_mb:.0f} MB, {(cost.dumps_s + cost.loads_s) * 1e3:.0f} ms"],
            [result.name, "whole state: flat (shareable) vs objects MB",
             f"{result.shares['flat']:.1f} vs {result.shares['rewrite']:.1f}"],
            [result.name, "delta stream per event p50: changed bytes, pickled bytes, "
             "reader apply µs", f"{np.median(delta):.0f} B, "
             f"{np.median(run.event_delta.encoded):.0f} B, "
             f"{_median_us(run.event_delta.apply_ns):.0f} µs" if delta.size else "-"],
        ]
    fast = [v for v in visibilities if v.source == "sqlite" and v.interval_ms == 1]
    if fast:
        v = fast[0]
        rows.append(["log", "SQLite commit -> visible in another process, 1 ms poll, p50 / p99",
                     f"{v.ack_to_visible_ms[0]:.2f} / {v.ack_to_visible_ms[1]:.2f} ms"])
    rows.append(["log", "committed position per request: SQLite query vs mmap slot",
                 f"{reads['sqlite']:.1f} vs {reads['mmap']:.2f} µs"])
    if memory is not None:
        forked = memory["forked"]
        private = forked.get("Private_Clean", 0) + forked.get("Private_Dirty", 0)
        rows.append(["retail", "replica RSS MB (fresh process) x N=2 / N=8; forked private",
                     f"{memory['loaded']:.0f} x 2 = {2 * memory['loaded']:.0f} / "
                     f"x 8 = {8 * memory['loaded']:.0f}; {private:.0f}"])
    impressions = results[0].forms[0]
    rows.append([results[0].name, f"impression log today, at {REQUESTS_PER_S} requests/s",
                 f"{impressions.bytes_per_record / 1024:.1f} KB/record, "
                 f"{impressions.bytes_per_record * REQUESTS_PER_S / MB:.1f} MB/s"])
    Report("workers-design", "The numbers that decide the workers' design",
           ["data", "measure", "value"], rows).show(console)


if __name__ == "__main__":
    main()
