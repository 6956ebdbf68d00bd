"""Typed settings of the engine; constructor values are hyperparameters, stored verbatim."""

from __future__ import annotations

from dataclasses import dataclass, field

from freshrec.records import Event


@dataclass(frozen=True)
class EventWeights:
    """How much each event type says about a user's interest.

    A purchase says more than a view. A rating's weight scales with its value so
    that a 5-star rating counts more than a 1-star one, but never goes negative:
    even a low rating means the user consumed the item.

    >>> weights = EventWeights()
    >>> weights.of(Event(user="u", item="i", type="purchase", timestamp=0.0))
    8.0
    >>> weights.of(Event(user="u", item="i", type="rating", timestamp=0.0, value=5.0))
    1.5
    """

    view: float = 1.0
    click: float = 2.0
    add_to_cart: float = 4.0
    purchase: float = 8.0
    rating: float = 1.0
    rating_midpoint: float = 2.5
    rating_scale: float = 5.0

    def of(self, event: Event) -> float:
        base = float(getattr(self, event.type, 1.0))
        if event.type == "rating" and event.value is not None:
            relative = (event.value - self.rating_midpoint) / self.rating_scale
            return base * max(0.25, 1.0 + relative)
        return base

    @property
    def types(self) -> tuple[str, ...]:
        return ("view", "click", "add_to_cart", "purchase", "rating")
