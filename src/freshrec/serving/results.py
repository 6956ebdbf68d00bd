"""What a recommendation request asks for and what it answers."""

from __future__ import annotations

import msgspec


class Filters(msgspec.Struct, frozen=True):
    """Business rules applied to every answer, whichever source produced it."""

    exclude_seen: bool = True
    category: str | None = None
    available_only: bool = True
    exclude: frozenset[str] = frozenset()


class Recommendation(msgspec.Struct, frozen=True):
    """One recommended item, its score, and the source that put it there."""

    item: str
    score: float
    source: str


class Explanation(msgspec.Struct, frozen=True):
    """Why an item has its score: what scored it, and each feature's part of that score.

    For a linear ranker the parts are weight x feature value and add up to the score
    (``bias`` 0). For trees they are path attributions (``bias`` + parts = the score).
    For a first visit the answer's score is a place in two interleaved rankers' lists:
    ``ranker`` names the one whose turn placed the item, ``ranker_score`` is its score,
    and the parts add up to that. An item from a fallback source (no ranker) has that
    source's score as its one part.
    """

    ranker: str | None
    contributions: dict[str, float]
    bias: float = 0.0
    ranker_score: float | None = None
