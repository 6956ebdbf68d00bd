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
