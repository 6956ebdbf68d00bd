"""Full retraining: ALS and the content projection, trained off to the side and swapped in.

A training works on a snapshot of the interaction matrix taken under the lock;
the factorisation itself runs without the lock so requests and events go on.
When it finishes, the new factors are installed under the lock and the users
and items that changed meanwhile are folded in again, so nothing that arrived
during training is lost from the collaborative model.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from freshrec.learner.online import OnlineLearner, document
from freshrec.models.sequence import SequenceFit
from freshrec.models.state import ModelState


def histories(state: ModelState) -> list[np.ndarray[Any, Any]]:
    """Each user's distinct items in the order of their last event (the sequence model's
    training examples)."""
    out = []
    for profile in state.users.profiles:
        if profile.n > 1:
            order = np.argsort(profile.last_seen[: profile.n], kind="stable")
            out.append(profile.items[: profile.n][order])
    return out


def interaction_matrix(state: ModelState) -> sp.csr_matrix:
    """Users x items matrix of summed event weights."""
    rows, columns, values = [], [], []
    for user, profile in enumerate(state.users.profiles):
        if profile.n:
            rows.append(np.full(profile.n, user, dtype=np.int64))
            columns.append(profile.seen())
            values.append(profile.confidence[: profile.n])
    shape = (len(state.users), len(state.items))
    if not rows:
        return sp.csr_matrix(shape, dtype=np.float32)
    return sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
                         shape=shape, dtype=np.float32)


class Retrainer:
    """Runs at most one full training at a time, in the foreground or a background thread."""

    def __init__(self, state: ModelState, learner: OnlineLearner, lock: threading.RLock) -> None:
        self.state = state
        self.learner = learner
        self.lock = lock
        self._thread: threading.Thread | None = None
        self._running = threading.Lock()
        self.trainings = 0
        self.last_error: BaseException | None = None
        self.last_duration: float | None = None
        self.sequence_seconds: float | None = None
        """How long the last training's sequence model took (its share of the training)."""

    @property
    def running(self) -> bool:
        return self._running.locked()

    def train(self, rankers: bool = True) -> bool:
        """Train now, in this thread; False if another training is already running."""
        if not self._running.acquire(blocking=False):
            return False
        try:
            self._train(rankers)
            return True
        finally:
            self._running.release()

    def start(self, rankers: bool = True) -> bool:
        """Start a background training; False if one is already running."""
        if not self._running.acquire(blocking=False):
            return False

        def run() -> None:
            try:
                self._train(rankers)
            except BaseException as error:  # the service must outlive a failed training
                self.last_error = error
            finally:
                self._running.release()

        self._thread = threading.Thread(target=run, name="freshrec-retrain", daemon=True)
        self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _train(self, rankers: bool = True) -> None:
        started = time.perf_counter()
        with self.lock:
            matrix = interaction_matrix(self.state)
            documents = [document(self.state, i) for i in range(len(self.state.items))]
            sample_features, sample_labels = self.state.samples.snapshot()
            sequences = histories(self.state) if self.state.config.sequence_model else None
            self.learner.touched_users.clear()
            self.learner.touched_items.clear()
        user_factors, item_factors = self.state.als.train(matrix)
        projection_inputs = self._content_inputs(documents, matrix, item_factors)
        tree = (self.state.tree_ranker.train(sample_features, sample_labels, self.state.ranker)
                if rankers and self.state.config.tree_ranker else None)
        content_rows = self.state.content_index.encode(documents) if documents else None
        sequence_started = time.perf_counter()
        sequence = (self._train_sequence(sequences, len(documents), item_factors)
                    if sequences else None)
        self.sequence_seconds = time.perf_counter() - sequence_started if sequences else None
        with self.lock:
            self._install(user_factors, item_factors, documents, projection_inputs)
            if sequence is not None:
                self._install_sequence(sequence)
            if content_rows is not None:
                self.state.content_index.install(content_rows)
            if tree is not None:
                self.state.tree_ranker.model = tree
        self.trainings += 1
        self.last_duration = time.perf_counter() - started

    def _train_sequence(self, sequences: list[np.ndarray[Any, Any]], n_items: int,
                        item_factors: np.ndarray[Any, Any]) -> SequenceFit:
        """Solve the sequence model and its map from ALS vectors, off the lock."""
        model = self.state.sequence
        fit = model.fit(sequences, n_items)
        model.fit_mapping(fit, item_factors)
        return fit

    def _install_sequence(self, fit: SequenceFit) -> None:
        """Swap the new sequence model in (after the new ALS vectors and content priors,
        which items outside its vocabulary map from)."""
        state = self.state
        state.sequence.install(fit)
        state.sequence.map_items(np.arange(len(state.items)), state.als.item_factors)

    def _content_inputs(self, documents: list[str], matrix: sp.csr_matrix,
                        item_factors: np.ndarray[Any, Any]) -> tuple[Any, Any] | None:
        """Fit IDF and the projection to item vectors on items with enough events."""
        state = self.state
        state.encoder.fit(documents) if documents else None
        events_per_item = np.diff(matrix.tocsc().indptr)
        eligible = np.flatnonzero((events_per_item >= state.config.content_min_events)
                                  & np.any(item_factors != 0, axis=1))
        eligible = eligible[[bool(documents[i].strip()) for i in eligible]]
        if eligible.size < 10:
            return None
        features = state.encoder.transform([documents[i] for i in eligible])
        return features, item_factors[eligible]

    def _install(self, user_factors: np.ndarray[Any, Any], item_factors: np.ndarray[Any, Any],
                 documents: list[str], projection_inputs: tuple[Any, Any] | None) -> None:
        state = self.state
        state.als.install(user_factors, item_factors)
        if projection_inputs is not None:
            state.projection.fit(*projection_inputs)
            trained_items = item_factors.shape[0]
            n_items = len(state.items)
            has_events = np.array([state.item_users.of(i)[0].size > 0 for i in range(n_items)])
            all_documents = documents + [document(state, i) for i in range(trained_items, n_items)]
            vectors = state.projection.predict(state.encoder.transform(all_documents))
            for index in range(n_items):
                # Items the factorisation saw keep their trained vectors; the rest take content.
                replace = not has_events[index] or not state.als.has_item[index]
                state.als.set_prior(index, vectors[index], replace_factors=replace)
        learner = self.learner
        learner.dirty_users.update(learner.touched_users)
        learner.dirty_items.update(learner.touched_items)
        learner.flush_items()
        learner.touched_users.clear()
        learner.touched_items.clear()
        state.model_version = f"v{self.trainings + 1}-{state.events_seen}"
        state.als.refresh_grams()
