"""``sasrec``: a self-attentive sequential recommender (Kang & McAuley, 2018), trained once.

``fit`` trains the network on the training half only: each user's events in time
order form a sequence of items, the last ``maxlen`` of which train it to predict
every next item. Each user's last training item is held out as the validation
target (the end of the training half, never the scored half); after every epoch the
model's HR@10 on those targets is measured, training stops once it has not improved
for ``patience`` epochs, and the best epoch's weights are kept.

The loss is the full softmax cross-entropy over the catalog by default; the paper's
binary cross-entropy against one sampled negative stays available as ``loss="bce"``.
On MovieLens small (batches of 128) both sat at the same validation HR@10, 0.036 to
0.042, through their first 49 epochs, where patience stopped the binary one (its
epochs are cheaper: 2.9 s against 4.7 s); the softmax went on to 0.09 by epoch 74.
Later work found the same of SASRec in general: full softmax trains it best, one
negative leaves it overconfident (Klenitskiy & Vasilev 2023; Petrov & Macdonald 2023).

After ``fit`` the weights never change. ``learn_one`` appends the item to the user's
input (the latest ``maxlen`` items); ``recommend`` runs the network on that input and
ranks every item seen in training. An item first seen later has no embedding: it is
noted, left out of the input, and never recommended. A user with no known item gets
the training half's popularity order.

The replay does not tune SASRec on a grid (``tuning.candidates`` offers nothing for
it): it runs with the paper's MovieLens-1M hyperparameters (:class:`SasrecParams`, but
smaller batches) and picks its epoch by early stopping. torch is an optional
dependency (``freshrec[seq]``); :func:`torch_missing` says why the contestant cannot run.

>>> _left_padded([[1, 2], [3, 4, 5, 6]], 3).tolist()  # the network's input rows
[[0, 1, 2], [4, 5, 6]]
"""

from __future__ import annotations

import importlib.util
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING

import numpy as np

from freshrec.evaluation.contestants._index import IdIndex
from freshrec.evaluation.contestants._topk import top_k
from freshrec.evaluation.contestants.base import SasrecParams
from freshrec.records import Event, Item

if TYPE_CHECKING:
    from freshrec.evaluation.contestants._sasrec_net import SasrecNet, TrainingLog

INSTALL_HINT = "needs torch: pip install 'freshrec[seq]'"


def torch_missing() -> str | None:
    """``None`` when torch can be imported, else the one-line reason to show."""
    try:
        found = importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        found = False
    return None if found else INSTALL_HINT


class Sasrec:
    """SASRec trained once on the training half, then fed each user's latest items."""

    name = "sasrec"

    def __init__(self, params: SasrecParams | None = None, *, seed: int = 0) -> None:
        self.params = params or SasrecParams()
        self.seed = seed
        self.items = IdIndex()
        """Items seen in training; item position p is network token p + 1."""
        self.popularity = np.zeros(0)
        self.inputs: dict[str, deque[int]] = {}
        self.unscorable: set[str] = set()
        """Items first seen after training: SASRec has no embedding for them."""
        self.validated_on: list[Event] = []
        """The training events whose items served as validation targets."""
        self.log: TrainingLog | None = None
        self.net: SasrecNet | None = None

    def fit(self, records: Sequence[Item | Event]) -> None:
        import torch

        from freshrec.evaluation.contestants._sasrec_net import SasrecNet, train

        torch.set_num_threads(1)  # the replay runs contestants side by side, one core each
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        events = sorted((r for r in records if isinstance(r, Event)), key=lambda e: e.timestamp)
        by_user: dict[str, list[Event]] = {}
        for event in events:
            self.items.add(event.item)
            by_user.setdefault(event.user, []).append(event)
        self.popularity = np.zeros(len(self.items))
        for event in events:
            self.popularity[self.items.positions[event.item]] += 1.0
        for user, history in by_user.items():
            self.inputs[user] = deque((self._token(e.item) for e in history),
                                      maxlen=self.params.maxlen)
        if not self.items:
            return

        maxlen = self.params.maxlen
        training: list[list[int]] = []
        owned: list[set[int]] = []
        validation_inputs: list[list[int]] = []
        validation_answers: list[int] = []
        for history in by_user.values():
            tokens = [self._token(e.item) for e in history]
            if len(tokens) >= 3:  # one held out, and at least one pair left to train on
                self.validated_on.append(history[-1])
                validation_inputs.append(tokens[-1 - maxlen:-1])
                validation_answers.append(tokens[-1])
                tokens = tokens[:-1]
            if len(tokens) >= 2:
                training.append(tokens[-1 - maxlen:])
                owned.append(set(tokens))
        inputs = _left_padded([t[:-1] for t in training], maxlen)
        targets = _left_padded([t[1:] for t in training], maxlen)
        validation = (_left_padded(validation_inputs, maxlen),
                      np.asarray(validation_answers, dtype=np.int64))
        n_items = len(self.items)

        def negatives(rows: np.ndarray, wanted: np.ndarray) -> np.ndarray:
            drawn = rng.integers(1, n_items + 1, size=wanted.shape)
            for row, user in enumerate(rows):
                mine = owned[user]
                if len(mine) >= n_items:
                    continue
                for column in np.flatnonzero(wanted[row]):
                    while int(drawn[row, column]) in mine:
                        drawn[row, column] = rng.integers(1, n_items + 1)
            return drawn

        self.net = SasrecNet(n_items, maxlen, self.params.hidden, self.params.blocks,
                             self.params.heads, self.params.dropout)
        self.log = train(self.net, inputs, targets, validation, self.params, rng, negatives)

    def training_summary(self) -> dict[str, object]:
        """Epochs run, the one kept, its validation HR@10 and why training stopped."""
        if self.log is None:
            return {"epochs": 0, "validation_users": 0}
        return {**asdict(self.log), "validation_users": len(self.validated_on)}

    def add_item(self, item: Item) -> None:
        if item.id not in self.items:
            self.unscorable.add(item.id)

    def learn_one(self, event: Event) -> None:
        position = self.items.get(event.item)
        if position is None:
            self.unscorable.add(event.item)
            return
        self.inputs.setdefault(event.user, deque(maxlen=self.params.maxlen)).append(position + 1)

    def recommend(self, user: str, k: int, exclude: Collection[str]) -> list[str]:
        history = self.inputs.get(user)
        if self.net is None or not history:
            scores = self.popularity
        else:
            import torch

            sequence = _left_padded([list(history)], self.params.maxlen)
            with torch.inference_mode():
                scores = self.net.scores(torch.from_numpy(sequence))[0].numpy()
        chosen = top_k(scores, k, self.items.known(exclude))
        return [self.items.ids[i] for i in chosen]

    def _token(self, item: str) -> int:
        return self.items.positions[item] + 1


def _left_padded(sequences: list[list[int]], length: int) -> np.ndarray:
    """Token rows of ``length``, each sequence's latest ``length`` tokens at the right end."""
    rows = np.zeros((len(sequences), length), dtype=np.int64)
    for row, tokens in enumerate(sequences):
        tail = tokens[-length:]
        if tail:
            rows[row, length - len(tail):] = tail
    return rows
