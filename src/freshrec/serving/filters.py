"""Business filters as a boolean mask over the catalog, applied to every source alike."""

from __future__ import annotations

from typing import Any

import numpy as np

from freshrec.models.features import Context
from freshrec.models.state import ModelState
from freshrec.serving.results import Filters


def allowed_items(state: ModelState, filters: Filters, context: Context) -> np.ndarray[Any, Any]:
    """True for every item the answer may contain.

    >>> from freshrec.config import EngineConfig
    >>> from freshrec.records import Item
    >>> state = ModelState(EngineConfig())
    >>> for item in (Item(id="a"), Item(id="b", available=False)):
    ...     _ = state.items.upsert(item)
    >>> allowed_items(state, Filters(), Context()).tolist()
    [True, False]
    """
    n = len(state.items)
    mask = state.items.available[:n].copy() if filters.available_only else np.ones(n, dtype=bool)
    if filters.category is not None:
        mask &= state.items.category_mask(filters.category)
    if filters.exclude_seen and context.seen.size:
        mask[context.seen] = False
    if filters.exclude:
        mask[state.items.indices_of(filters.exclude)] = False
    return mask
