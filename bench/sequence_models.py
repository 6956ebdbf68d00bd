"""Which sequence model: candidates for freshrec's sequence source, each on its own.

    .venv/bin/python bench/sequence_models.py                 # MovieLens small, split 0.8
    .venv/bin/python bench/sequence_models.py --split 0.5

Every model is trained once on the first share of MovieLens small's ratings (each
user's items in time order) and then asked, before every later rating, for the top
10 the user has not rated yet given what they rated so far (their later ratings are
appended to their history, as the replay feeds them; no model is retrained). The
table gives HR@10 and the training time. The candidates:

* popularity, and counted transitions (what followed each of the last 3 items, the
  nearer the heavier: the ``transition`` signal the engine already has);
* the linear model of ``freshrec.models.sequence`` (ridge regression from the decayed
  last items to the next one), in full, cut to each row's top 100 (what the engine
  keeps), and factorised to rank 128;
* the same regression with the last item and the older ones in separate blocks.

SASRec, the transformer, is a contestant of the full replay (``freshrec replay``),
where it is compared with the engine as a whole.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from rich.console import Console
from rich.table import Table
from sklearn.utils.extmath import randomized_svd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from freshrec.data import load_movielens
from freshrec.models.sequence import SequenceModel

Array = np.ndarray[Any, Any]
Scorer = Callable[[list[int]], Array]
LENGTH, DECAY, REGULARIZATION, VOCABULARY = 10, 0.9, 3000.0, 2000


def regression(sequences: list[Array], n: int, blocks: int) -> tuple[Array, Array]:
    """The dense ridge solution over the vocabulary (``blocks=2``: last item apart)."""
    counts = np.bincount(np.concatenate(sequences), minlength=n)
    vocabulary = np.sort(np.argsort(-counts, kind="stable")[:VOCABULARY])
    slot = np.full(n, -1)
    slot[vocabulary] = np.arange(vocabulary.size)
    size = vocabulary.size
    rows, columns, values, targets = [], [], [], []
    example = 0
    for sequence in sequences:
        where = slot[sequence]
        for t in range(1, len(sequence)):
            if where[t] < 0:
                continue
            for lag in range(1, LENGTH + 1):
                if t - lag >= 0 and where[t - lag] >= 0:
                    rows.append(example)
                    columns.append(where[t - lag] + (size if blocks > 1 and lag > 1 else 0))
                    values.append(DECAY ** (lag - 1))
            targets.append(where[t])
            example += 1
    inputs = sp.csr_matrix((values, (rows, columns)), shape=(example, size * blocks))
    target = sp.csr_matrix((np.ones(example), (np.arange(example), targets)),
                           shape=(example, size))
    gram = (inputs.T @ inputs).toarray()
    gram[np.diag_indices(size * blocks)] += REGULARIZATION
    solved = scipy.linalg.solve(gram, (inputs.T @ target).toarray(), assume_a="pos")
    return vocabulary, solved


def dense_scorer(vocabulary: Array, matrix: Array, n: int, blocks: int) -> Scorer:
    slot = np.full(n, -1)
    slot[vocabulary] = np.arange(vocabulary.size)

    def score(history: list[int]) -> Array:
        query = np.zeros(matrix.shape[1])
        for lag, item in enumerate(list(dict.fromkeys(reversed(history)))[:LENGTH]):
            if slot[item] >= 0:
                row = slot[item] + (vocabulary.size if blocks > 1 and lag > 0 else 0)
                query += DECAY**lag * matrix[row]
        out = np.zeros(n)
        out[vocabulary] = query
        return out
    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", type=float, default=0.8)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/movielens-small"))
    args = parser.parse_args()
    events = load_movielens(args.data).events
    cut = int(len(events) * args.split)
    ids: dict[str, int] = {}
    for event in events:
        ids.setdefault(event.item, len(ids))
    n = len(ids)
    histories: dict[str, list[int]] = defaultdict(list)
    for event in events[:cut]:
        histories[event.user].append(ids[event.item])
    sequences = [np.array(h) for h in histories.values() if len(h) > 1]

    def evaluate(score: Scorer) -> float:
        seen = {user: list(h) for user, h in histories.items()}
        hits = requests = 0
        for event in events[cut:]:
            history = seen.setdefault(event.user, [])
            if history:
                scores = np.asarray(score(history), dtype=np.float64).copy()
                scores[history] = -np.inf
                hits += ids[event.item] in set(np.argpartition(-scores, 10)[:10].tolist())
                requests += 1
            history.append(ids[event.item])
        return hits / max(requests, 1)

    candidates: list[tuple[str, Callable[[], Scorer]]] = []
    popularity = np.bincount([ids[e.item] for e in events[:cut]], minlength=n).astype(float)
    candidates.append(("popularity", lambda: lambda history: popularity))

    def transitions() -> Scorer:
        follows: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for sequence in sequences:
            for t in range(1, len(sequence)):
                for lag in range(1, 4):
                    if t - lag >= 0:
                        follows[int(sequence[t - lag])][int(sequence[t])] += 1.0 / lag

        def score(history: list[int]) -> Array:
            out = np.zeros(n)
            for lag, item in enumerate(reversed(history[-3:])):
                for other, weight in follows.get(item, {}).items():
                    out[other] += weight / (lag + 1)
            return out
        return score
    candidates.append(("counted transitions (the engine's transition signal)", transitions))

    def linear(blocks: int, rank: int | None) -> Callable[[], Scorer]:
        def build() -> Scorer:
            vocabulary, solved = regression(sequences, n, blocks)
            if rank is not None:
                left, strength, right = randomized_svd(solved, rank, n_iter=4, random_state=0)
                solved = (left * strength) @ right
            return dense_scorer(vocabulary, solved, n, blocks)
        return build
    candidates.append(("linear, full matrix", linear(1, None)))

    def engine_model() -> Scorer:
        model = SequenceModel(length=LENGTH, decay=DECAY, regularization=REGULARIZATION,
                              vocabulary=VOCABULARY)
        model.install(model.fit(sequences, n))

        def score(history: list[int]) -> Array:
            tail = list(dict.fromkeys(reversed(history)))[:LENGTH]
            return model.scores([(item, DECAY**lag) for lag, item in enumerate(tail)], n)
        return score
    candidates.append(("linear, top 100 per row (freshrec's sequence model)", engine_model))
    candidates.append(("linear, factorised to rank 128", linear(1, 128)))
    candidates.append(("linear, last item in its own block", linear(2, None)))

    table = Table(title=f"Sequence models on MovieLens small, trained on the first "
                        f"{args.split:.0%}, {len(events) - cut:,} later ratings")
    for column in ("model", "HR@10", "train s"):
        table.add_column(column)
    for name, build in candidates:
        started = time.perf_counter()
        scorer = build()
        trained = time.perf_counter() - started
        table.add_row(name, f"{evaluate(scorer):.4f}", f"{trained:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
