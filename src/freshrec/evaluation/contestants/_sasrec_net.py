"""The SASRec network (Kang & McAuley, 2018) in torch, and its training loop.

Only :mod:`freshrec.evaluation.contestants.sasrec` imports this module, once it knows
torch is installed (the ``seq`` extra): the rest of freshrec runs without torch.

The layout follows the authors' reference code: the item embedding (scaled by
sqrt(hidden)) plus a learned position embedding, dropout, then ``blocks`` blocks of
causal self-attention and a point-wise feed-forward network, each with a pre-LayerNorm
and a residual, padding positions zeroed after every block, and a last LayerNorm. The
item embedding is also the output layer. Sequences are left-padded with token 0, so a
user's latest item always sits at the last position.

>>> net = SasrecNet(n_items=5, maxlen=4, hidden=8, blocks=1, heads=1, dropout=0.0)
>>> net(torch.tensor([[0, 1, 2, 3]])).shape
torch.Size([1, 4, 8])
>>> net.scores(torch.tensor([[0, 0, 2, 3]])).shape  # one score per item 1..n_items
torch.Size([1, 5])
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from freshrec.evaluation.contestants.base import SasrecParams

LOSS_CHUNK = 2048
"""Positions per slice of the full-softmax loss: bounds its logits to LOSS_CHUNK x items."""


class PointWiseFeedForward(nn.Module):
    """Two position-wise linear layers with ReLU and dropout, and the residual."""

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.inner = nn.Linear(hidden, hidden)
        self.outer = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        hidden = self.dropout(torch.relu(self.inner(inputs)))
        return inputs + self.dropout(self.outer(hidden))


class SasrecNet(nn.Module):
    """Item sequences in, one hidden vector per position out (position t sees items <= t)."""

    causal: torch.Tensor

    def __init__(self, n_items: int, maxlen: int, hidden: int, blocks: int, heads: int,
                 dropout: float) -> None:
        super().__init__()
        self.items = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.positions = nn.Embedding(maxlen, hidden)
        self.dropout = nn.Dropout(dropout)
        self.attention_norms = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8)
                                             for _ in range(blocks))
        self.attentions = nn.ModuleList(nn.MultiheadAttention(hidden, heads, dropout=dropout,
                                                              batch_first=True)
                                        for _ in range(blocks))
        self.forward_norms = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8)
                                           for _ in range(blocks))
        self.feed_forwards = nn.ModuleList(PointWiseFeedForward(hidden, dropout)
                                           for _ in range(blocks))
        self.last_norm = nn.LayerNorm(hidden, eps=1e-8)
        # True above the diagonal: position t may not attend to a later position.
        self.register_buffer("causal", torch.triu(torch.ones(maxlen, maxlen, dtype=torch.bool),
                                                  diagonal=1), persistent=False)
        for parameter in self.parameters():  # the reference's Xavier initialisation
            if parameter.dim() > 1:
                nn.init.xavier_normal_(parameter)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        length = sequences.shape[1]
        real = (sequences != 0).unsqueeze(-1)
        states = self.items(sequences) * math.sqrt(self.items.embedding_dim)
        states = states + self.positions.weight[-length:]
        states = self.dropout(states) * real
        mask = self.causal[:length, :length]
        for norm, attention, forward_norm, feed_forward in zip(
                self.attention_norms, self.attentions, self.forward_norms, self.feed_forwards,
                strict=True):
            queries = norm(states)
            attended, _ = attention(queries, states, states, attn_mask=mask, need_weights=False)
            states = queries + attended
            states = feed_forward(forward_norm(states)) * real
        result: torch.Tensor = self.last_norm(states)
        return result

    def scores(self, sequences: torch.Tensor) -> torch.Tensor:
        """Every item's score as the next item after each sequence (column j is item j+1)."""
        last = self(sequences)[:, -1, :]
        result: torch.Tensor = last @ self.items.weight[1:].T
        return result


@dataclass
class TrainingLog:
    """What the training did: epochs run, the one kept, and its validation HR@10."""

    epochs: int = 0
    best_epoch: int = 0
    best_hr: float = -1.0
    seconds: float = 0.0
    stopped_by: str = ""
    history: list[float] | None = None


def train(net: SasrecNet, inputs: np.ndarray, targets: np.ndarray,
          validation: tuple[np.ndarray, np.ndarray], params: SasrecParams,
          rng: np.random.Generator,
          negatives: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> TrainingLog:
    """Adam on the next-item objective; keeps the weights of the best validation epoch.

    ``inputs`` and ``targets`` are (users, maxlen) token arrays, the targets the inputs
    shifted by one (0 where there is nothing to predict). ``validation`` is each
    validated user's input sequence and the token that followed it. ``negatives`` draws,
    for the ``"bce"`` loss, one item per position that the user never had.
    """
    optimizer = torch.optim.Adam(net.parameters(), lr=params.learning_rate, betas=(0.9, 0.98))
    log = TrainingLog(history=[])
    best_state = {name: value.clone() for name, value in net.state_dict().items()}
    started = time.perf_counter()
    for epoch in range(1, params.max_epochs + 1):
        net.train()
        order = rng.permutation(inputs.shape[0])
        for begin in range(0, order.shape[0], params.batch_size):
            batch = order[begin:begin + params.batch_size]
            optimizer.zero_grad()
            if params.loss == "bce":
                _bce_backward(net, inputs[batch], targets[batch],
                              negatives(batch, targets[batch]))
            else:
                _softmax_backward(net, inputs[batch], targets[batch])
            optimizer.step()
        hr = hit_rate(net, *validation)
        assert log.history is not None
        log.history.append(hr)
        log.epochs = epoch
        if hr > log.best_hr:
            log.best_hr, log.best_epoch = hr, epoch
            best_state = {name: value.clone() for name, value in net.state_dict().items()}
        if epoch - log.best_epoch >= params.patience:
            log.stopped_by = "patience"
            break
        if time.perf_counter() - started > params.max_seconds:
            log.stopped_by = "max_seconds"
            break
    else:
        log.stopped_by = "max_epochs"
    net.load_state_dict(best_state)
    net.eval()
    log.seconds = time.perf_counter() - started
    return log


def _softmax_backward(net: SasrecNet, inputs: np.ndarray, targets: np.ndarray) -> None:
    """Full-softmax cross-entropy over the catalog, summed slice by slice of positions.

    The hidden states are computed once; each slice's logits are built, differentiated
    and freed before the next, then the states' gradient flows back through the network.
    """
    states = net(torch.from_numpy(inputs))
    wanted = torch.from_numpy(targets) != 0
    chosen = states[wanted]
    labels = torch.from_numpy(targets)[wanted] - 1
    detached = chosen.detach().requires_grad_(True)
    count = max(1, labels.shape[0])
    for begin in range(0, labels.shape[0], LOSS_CHUNK):
        logits = detached[begin:begin + LOSS_CHUNK] @ net.items.weight[1:].T
        loss = nn.functional.cross_entropy(logits, labels[begin:begin + LOSS_CHUNK],
                                           reduction="sum") / count
        loss.backward()
    if detached.grad is not None:
        chosen.backward(detached.grad)


def _bce_backward(net: SasrecNet, inputs: np.ndarray, targets: np.ndarray,
                  negatives: np.ndarray) -> None:
    """The paper's loss: each position's next item against one sampled negative."""
    states = net(torch.from_numpy(inputs))
    positive = net.items(torch.from_numpy(targets))
    negative = net.items(torch.from_numpy(negatives))
    wanted = torch.from_numpy(targets) != 0
    positive_logits = (states * positive).sum(-1)[wanted]
    negative_logits = (states * negative).sum(-1)[wanted]
    bce = nn.functional.binary_cross_entropy_with_logits
    loss = (bce(positive_logits, torch.ones_like(positive_logits))
            + bce(negative_logits, torch.zeros_like(negative_logits)))
    loss.backward()


def hit_rate(net: SasrecNet, inputs: np.ndarray, answers: np.ndarray, k: int = 10,
             batch: int = 256) -> float:
    """HR@k of the next token over the whole catalog (nothing excluded), in eval mode."""
    if inputs.shape[0] == 0:
        return 0.0
    net.eval()
    hits = 0
    with torch.inference_mode():
        for begin in range(0, inputs.shape[0], batch):
            scores = net.scores(torch.from_numpy(inputs[begin:begin + batch]))
            top = torch.topk(scores, min(k, scores.shape[1]), dim=1).indices + 1
            wanted = torch.from_numpy(answers[begin:begin + batch]).unsqueeze(1)
            hits += int((top == wanted).any(dim=1).sum())
    return hits / inputs.shape[0]
