"""A generated shop with a known signal, for demos and tests where real data is absent.

Real logs hide what a recommender should find; a generated shop states it. The
:class:`ShopSimulator` plants these signals, each of which a test can check:

* **categories with their own vocabulary**: titles and descriptions draw most
  words from a per-category list, so content features predict the category;
* **skewed popularity**: item appeal follows a Zipf law, so a few items dominate;
* **users with tastes**: each user prefers one to three categories and spends
  most sessions (``focus``) in them;
* **funnels**: a session views a few items; some views lead to a click, some
  clicks to an add-to-cart, and carts are checked out as purchases at its end;
* **launches**: a fraction of items enters the catalog mid-stream, gets no event
  before its launch and a novelty boost for a while after it;
* **a shift in taste**: at ``shift_at`` every user's preferred categories rotate
  to the next ones, and a seasonal category surges.

It runs forever (:meth:`ShopSimulator.events`, :meth:`ShopSimulator.events_until`)
for the live demo, and :func:`generate_shop` takes a fixed number of events from
it for tests and benchmarks. Only numpy is used, and a seed fixes everything.

>>> shop = generate_shop(n_users=50, n_items=40, n_events=500, seed=1)
>>> len(shop.events), len({event.id for event in shop.events})
(500, 500)
>>> shop.events == generate_shop(n_users=50, n_items=40, n_events=500, seed=1).events
True
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from freshrec.data.dataset import CleaningReport, Dataset
from freshrec.records import Event, Item

DAY = 86_400.0
DEFAULT_START = 1_704_067_200.0  # 2024-01-01 00:00:00 UTC

# name -> (adjectives, nouns, context words); words overlap little across categories.
VOCABULARY: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "kitchen": (("stainless", "nonstick", "ceramic", "cast-iron", "bamboo", "enamel"),
                ("skillet", "saucepan", "knife", "cutting board", "kettle", "whisk", "colander",
                 "teapot"),
                ("cooking", "recipe", "chef", "oven", "dinner", "baking", "stovetop", "spices")),
    "garden": (("weatherproof", "galvanised", "terracotta", "ergonomic", "heirloom", "hardy"),
               ("trowel", "planter", "hose", "pruner", "seed tray", "watering can", "rake",
                "compost bin"),
               ("soil", "bloom", "seedling", "lawn", "harvest", "greenhouse", "flowerbed",
                "mulch")),
    "toys": (("wooden", "plush", "magnetic", "musical", "stackable", "glow-in-the-dark"),
             ("puzzle", "teddy bear", "building blocks", "toy train", "doll", "kite",
              "marble run", "yo-yo"),
             ("kids", "playtime", "toddler", "imagination", "nursery", "birthday", "game",
              "learning")),
    "books": (("illustrated", "hardback", "annotated", "pocket", "collected", "bestselling"),
              ("novel", "cookbook", "atlas", "biography", "poetry anthology", "field guide",
               "thriller", "memoir"),
              ("chapters", "author", "reading", "story", "library", "edition", "pages",
               "literature")),
    "electronics": (("wireless", "rechargeable", "bluetooth", "noise-cancelling", "smart",
                     "portable"),
                    ("headphones", "speaker", "charger", "power bank", "webcam", "keyboard",
                     "smartwatch", "router"),
                    ("battery", "usb-c", "firmware", "pairing", "gadget", "signal", "device",
                     "audio")),
    "fashion": (("linen", "merino", "slim-fit", "vintage", "waterproof", "tailored"),
                ("scarf", "jacket", "sneakers", "handbag", "sunglasses", "cardigan", "belt",
                 "dress"),
                ("outfit", "wardrobe", "style", "seasonal", "runway", "fabric", "stitching",
                 "trend")),
    "sports": (("lightweight", "breathable", "adjustable", "shock-absorbing", "grippy",
                "reflective"),
               ("yoga mat", "dumbbell", "running shoes", "tennis racket", "football",
                "water bottle", "resistance band", "cycling helmet"),
               ("workout", "training", "fitness", "gym", "endurance", "athlete", "marathon",
                "stretching")),
    "beauty": (("hydrating", "fragrance-free", "vegan", "exfoliating", "soothing", "matte"),
               ("moisturiser", "lipstick", "serum", "face mask", "shampoo", "perfume",
                "nail polish", "sunscreen"),
               ("skincare", "complexion", "glow", "routine", "cosmetics", "salon", "scent",
                "pores")),
    "home_decor": (("rustic", "scandinavian", "velvet", "handwoven", "gilded", "minimalist"),
                   ("cushion", "candle holder", "wall clock", "rug", "vase", "picture frame",
                    "lampshade", "throw"),
                   ("living room", "interior", "cosy", "mantelpiece", "accent", "ambience",
                    "decor", "hallway")),
    "pets": (("chew-proof", "orthopaedic", "reflective", "catnip", "washable", "grain-free"),
             ("dog bed", "cat tree", "leash", "bird feeder", "aquarium filter", "pet bowl",
              "scratching post", "dog treats"),
             ("puppy", "kitten", "vet", "walkies", "paws", "grooming", "fur", "litter")),
    "stationery": (("recycled", "dotted", "refillable", "fine-tip", "leather-bound", "pastel"),
                   ("notebook", "fountain pen", "planner", "highlighters", "sticky notes",
                    "desk organiser", "envelopes", "sketchbook"),
                   ("writing", "journaling", "office", "calligraphy", "ink", "paper",
                    "desk", "lettering")),
    "outdoor": (("insulated", "ultralight", "windproof", "foldable", "solar", "rugged"),
                ("tent", "sleeping bag", "camping stove", "headlamp", "backpack", "hammock",
                 "compass", "cool box"),
                ("hiking", "campsite", "trail", "wilderness", "expedition", "summit",
                 "campfire", "trekking")),
}
DEFAULT_VIEWS = 4.0
DEFAULT_FUNNEL = (0.35, 0.3, 0.5)
"""Chance that a view leads to a click, a click to a cart, a cart to a purchase."""
SHARED_WORDS = ("classic", "premium", "everyday", "new", "deluxe", "compact", "handmade",
                "durable", "gift", "essential", "best", "quality")
"""Words of every category: the noise a content model has to see through."""


def expected_events_per_session(
    views_per_session: float, funnel: tuple[float, float, float]
) -> float:
    """Mean events in a session: views, plus the clicks, carts and purchases they lead to.

    >>> expected_events_per_session(4.0, (0.5, 0.5, 0.5))
    7.5
    """
    click, cart, buy = funnel
    return views_per_session * (1 + click + click * cart + click * cart * buy)


class ShopSimulator:
    """An endless, seeded shop: a catalog that grows, and the events of its sessions.

    Constructor arguments are the shop's parameters, stored as given; times are
    seconds since the epoch, offsets (``launch_window``, ``shift_at``) seconds
    after ``start``. Sessions arrive as a Poisson process (``sessions_per_hour``)
    and overlap, so events of different users interleave as in a real log.

    >>> sim = ShopSimulator(n_users=20, n_items=30, seed=3)
    >>> batch = sim.next_events(5)
    >>> [event.type for event in batch][:1], sim.emitted
    (['view'], 5)
    """

    def __init__(
        self,
        n_users: int = 1000,
        n_items: int = 400,
        *,
        seed: int = 0,
        start: float = DEFAULT_START,
        sessions_per_hour: float = 60.0,
        n_categories: int = 10,
        popularity_exponent: float = 1.0,
        focus: float = 0.85,
        views_per_session: float = DEFAULT_VIEWS,
        funnel: tuple[float, float, float] = DEFAULT_FUNNEL,
        seconds_between_events: float = 40.0,
        launch_fraction: float = 0.2,
        launch_window: tuple[float, float] = (3 * DAY, 27 * DAY),
        novelty_boost: float = 4.0,
        novelty_decay: float = 2 * DAY,
        shift_at: float | None = 15 * DAY,
        shift_rotation: int = 1,
        surge_category: str | None = "garden",
        surge_share: float = 0.25,
    ) -> None:
        if not 1 <= n_categories <= len(VOCABULARY):
            raise ValueError(f"n_categories must be between 1 and {len(VOCABULARY)}")
        if n_items < n_categories or n_users < 1:
            raise ValueError("need at least one user and one item per category")
        if surge_category is not None and surge_category not in list(VOCABULARY)[:n_categories]:
            raise ValueError(f"surge_category {surge_category!r} is not one of the categories")
        self.n_users = n_users
        self.n_items = n_items
        self.seed = seed
        self.start = start
        self.sessions_per_hour = sessions_per_hour
        self.n_categories = n_categories
        self.popularity_exponent = popularity_exponent
        self.focus = focus
        self.views_per_session = views_per_session
        self.funnel = funnel
        self.seconds_between_events = seconds_between_events
        self.launch_fraction = launch_fraction
        self.launch_window = launch_window
        self.novelty_boost = novelty_boost
        self.novelty_decay = novelty_decay
        self.shift_at = shift_at
        self.shift_rotation = shift_rotation
        self.surge_category = surge_category
        self.surge_share = surge_share

        self.categories: tuple[str, ...] = tuple(VOCABULARY)[:n_categories]
        self._rng = np.random.default_rng(seed)
        self._build_catalog()
        self._build_users()
        self._pending: list[tuple[float, int, str, str, str, float | None, str]] = []
        self._sequence = 0
        self._sessions = 0
        self.emitted = 0
        """How many events this simulator has handed out so far."""
        self.clock = start
        """The time of the last event handed out (``start`` before the first)."""
        self._next_arrival = start + self._arrival_gap()
        self._weights_until = -math.inf
        self._cumulative: list[np.ndarray] = []

    @classmethod
    def spanning(
        cls,
        n_events: int,
        days: float = 30.0,
        *,
        launch_fraction: float = 0.2,
        shift_at: float | None = 0.5,
        **options: Any,
    ) -> ShopSimulator:
        """A simulator whose first ``n_events`` events span about ``days`` days.

        The session rate is derived from the expected session length; launches
        fall between 10% and 90% of the span, and the taste shift happens at the
        fraction ``shift_at`` of it (``None``: no shift). Other ``options`` are
        passed to the constructor.
        """
        duration = days * DAY
        per_session = expected_events_per_session(
            options.get("views_per_session", DEFAULT_VIEWS), options.get("funnel", DEFAULT_FUNNEL)
        )
        return cls(
            sessions_per_hour=n_events / per_session / (duration / 3600.0),
            launch_fraction=launch_fraction,
            launch_window=(0.1 * duration, 0.9 * duration),
            shift_at=None if shift_at is None else shift_at * duration,
            **options,
        )

    # -- public -----------------------------------------------------------------------

    @property
    def expected_events_per_session(self) -> float:
        """Mean events in a session, from the view count and the funnel rates."""
        return expected_events_per_session(self.views_per_session, self.funnel)

    @property
    def shift_time(self) -> float | None:
        """The moment tastes shift, in seconds since the epoch, or ``None``."""
        return None if self.shift_at is None else self.start + self.shift_at

    def items(self, until: float | None = None) -> list[Item]:
        """Catalog records launched at or before ``until`` (all by default), by launch time."""
        return [self._records[i] for i in self._launch_order
                if until is None or self._launch[i] <= until]

    def launched_between(self, after: float, until: float) -> list[Item]:
        """Records launched in ``(after, until]``: what a live demo sends as time passes."""
        return [self._records[i] for i in self._launch_order if after < self._launch[i] <= until]

    def category_of(self, item: str) -> str:
        """The category an item belongs to."""
        return self.categories[self._item_category[self._index[item]]]

    def preferred_categories(self, user: str, at: float) -> tuple[str, ...]:
        """The categories ``user`` prefers at time ``at`` (they rotate at the shift)."""
        index = int(user.rsplit("-", 1)[1])
        preferred = self._preferences[index]
        if self.shift_time is not None and at >= self.shift_time:
            preferred = self._shifted(preferred)
        return tuple(self.categories[c] for c in preferred)

    def next_events(self, n: int, now: float | None = None) -> list[Event]:
        """The next ``n`` events in time order.

        With ``now``, a simulator whose clock (the time of its last event) is
        behind resumes at ``now``, as if the shop had paused: sessions in flight
        and future arrivals move forward by the idle time, so no backlog is
        replayed with old timestamps. Events run ahead of ``now`` when ``n`` is
        more than the session rate produces; :meth:`events_until` is the rate-true
        alternative. For a live demo, construct the simulator with
        ``start=time.time()`` so launches and the shift fall in the session.
        """
        if now is not None and now > self.clock:
            self._pause(now - self.clock)
        return [self._pop() for _ in range(n)]

    def events_until(self, until: float) -> list[Event]:
        """Every event up to and including ``until``: call it with the wall clock."""
        events = []
        while self._peek_time() <= until:
            events.append(self._pop())
        return events

    def events(self) -> Iterator[Event]:
        """Events forever, in time order."""
        while True:
            yield self._pop()

    # -- catalog and users ------------------------------------------------------------

    def _build_catalog(self) -> None:
        rng, n, k = self._rng, self.n_items, self.n_categories
        category = np.arange(n) % k
        self._item_category: list[int] = category.tolist()
        ranks = rng.permutation(n)
        self._appeal = 1.0 / (ranks + 1.0) ** self.popularity_exponent
        # The first item of each category is always there from the start.
        candidates = np.arange(k, n)
        n_launched = min(round(self.launch_fraction * n), len(candidates))
        launched = rng.choice(candidates, size=n_launched, replace=False)
        launch = np.full(n, self.start)
        low, high = self.launch_window
        launch[launched] = np.round(self.start + rng.uniform(low, high, size=n_launched), 3)
        self._launch = launch
        self._launch_order = np.lexsort((np.arange(n), launch)).tolist()
        self._members = [np.flatnonzero(category == c) for c in range(k)]
        self._records = [self._item(i) for i in range(n)]
        self._index = {record.id: i for i, record in enumerate(self._records)}

    def _item(self, i: int) -> Item:
        rng = self._rng
        name = self.categories[self._item_category[i]]
        adjectives, nouns, context = VOCABULARY[name]
        adjective, noun = adjectives[rng.integers(len(adjectives))], nouns[rng.integers(len(nouns))]
        shared = SHARED_WORDS[rng.integers(len(SHARED_WORDS))]
        title = f"{shared.capitalize()} {adjective} {noun}"
        words = [context[j] for j in rng.choice(len(context), size=3, replace=False)]
        words += [SHARED_WORDS[j] for j in rng.choice(len(SHARED_WORDS), size=2, replace=False)]
        text = (f"A {adjective} {noun} for {words[0]} and {words[1]}. "
                f"{words[3].capitalize()}, {words[4]} and made for {words[2]}.")
        price = round(float(rng.lognormal(mean=3.0, sigma=0.6)), 2)
        return Item(id=f"sku-{i:05d}", title=title, text=text, categories=(name,),
                    properties={"price": price}, timestamp=float(self._launch[i]))

    def _build_users(self) -> None:
        rng, k = self._rng, self.n_categories
        category_weight = 1.0 / np.sqrt(np.arange(k) + 1.0)
        category_weight /= category_weight.sum()
        sizes = rng.choice([1, 2, 3], size=self.n_users, p=[0.5, 0.3, 0.2])
        self._preferences = [
            tuple(int(c) for c in rng.choice(k, size=min(int(s), k), replace=False,
                                             p=category_weight))
            for s in sizes
        ]
        activity = rng.lognormal(mean=0.0, sigma=1.0, size=self.n_users)
        self._user_cumulative = np.cumsum(activity / activity.sum())

    def _shifted(self, preferred: tuple[int, ...]) -> tuple[int, ...]:
        return tuple((c + self.shift_rotation) % self.n_categories for c in preferred)

    # -- sessions ---------------------------------------------------------------------

    def _arrival_gap(self) -> float:
        return float(self._rng.exponential(3600.0 / self.sessions_per_hour))

    def _pause(self, seconds: float) -> None:
        """Move everything not yet emitted ``seconds`` later (order is unchanged)."""
        self._pending = [(round(entry[0] + seconds, 3), *entry[1:]) for entry in self._pending]
        heapq.heapify(self._pending)  # rounding may tie times whose order seq must break
        self._next_arrival += seconds
        self.clock += seconds

    def _peek_time(self) -> float:
        """Start sessions until the earliest pending event precedes the next arrival."""
        while not self._pending or self._next_arrival <= self._pending[0][0]:
            self._start_session(self._next_arrival)
            self._next_arrival += self._arrival_gap()
        return self._pending[0][0]

    def _pop(self) -> Event:
        self._peek_time()
        time, _, session, user, kind, value, item = heapq.heappop(self._pending)
        event_id = f"ev-{self.emitted}"
        self.emitted += 1
        self.clock = time
        return Event(user=user, item=item, type=kind, timestamp=time, value=value,
                     id=event_id, session=session)

    def _start_session(self, t0: float) -> None:
        rng = self._rng
        user = min(int(np.searchsorted(self._user_cumulative, rng.random(), side="right")),
                   self.n_users - 1)
        category = self._session_category(user, t0)
        cumulative = self._category_weights(t0)[category]
        n_views = 1 + int(rng.poisson(max(self.views_per_session - 1.0, 0.0)))
        draws = rng.random(n_views) * cumulative[-1]
        picks = self._members[category][np.searchsorted(cumulative, draws, side="right")]
        gaps = rng.exponential(self.seconds_between_events, size=3 * n_views + 1)
        funnel = rng.random((n_views, 3)) < np.asarray(self.funnel)
        clicked = funnel[:, 0]
        carted = clicked & funnel[:, 1]
        bought = carted & funnel[:, 2]
        session, user_id = f"s-{self._sessions}", f"user-{user:05d}"
        self._sessions += 1
        t, g = t0, 0
        for j, item in enumerate(picks.tolist()):
            item_id = self._records[item].id
            for kind, happens in (("view", True), ("click", clicked[j]),
                                  ("add_to_cart", carted[j])):
                if happens:
                    t += float(gaps[g])
                    g += 1
                    self._push(t, session, user_id, kind, None, item_id)
        if bought.any():
            t += float(gaps[g])
            for item in picks[bought].tolist():
                self._push(t, session, user_id, "purchase", 1.0, self._records[item].id)

    def _push(self, time: float, session: str, user: str, kind: str, value: float | None,
              item: str) -> None:
        heapq.heappush(self._pending, (round(time, 3), self._sequence, session, user, kind,
                                       value, item))
        self._sequence += 1

    def _session_category(self, user: int, t0: float) -> int:
        rng = self._rng
        shifted = self.shift_time is not None and t0 >= self.shift_time
        draw = rng.random()
        if shifted and self.surge_category is not None:
            if draw < self.surge_share:
                return self.categories.index(self.surge_category)
            draw = (draw - self.surge_share) / (1.0 - self.surge_share)
        if draw < self.focus:
            preferred = self._preferences[user]
            if shifted:
                preferred = self._shifted(preferred)
            return preferred[int(rng.integers(len(preferred)))]
        return int(rng.integers(self.n_categories))

    def _category_weights(self, t: float) -> list[np.ndarray]:
        """Per category, the cumulative appeal of its launched items at time ``t``.

        Recomputed when an item launches or the novelty boost has decayed a bit;
        between those moments the weights are treated as constant.
        """
        if t < self._weights_until:
            return self._cumulative
        age = t - self._launch
        live = age >= 0
        boost = np.where(live & (self._launch > self.start),
                         self.novelty_boost * np.exp(-np.maximum(age, 0) / self.novelty_decay),
                         0.0)
        weight = np.where(live, self._appeal * (1.0 + boost), 0.0)
        self._cumulative = [np.cumsum(weight[members]) for members in self._members]
        upcoming = self._launch[self._launch > t]
        step = self.novelty_decay / 10.0
        self._weights_until = min(t + step, float(upcoming.min()) if len(upcoming) else math.inf)
        return self._cumulative


def generate_shop(
    n_users: int = 1000,
    n_items: int = 400,
    n_events: int = 100_000,
    seed: int = 0,
    *,
    days: float = 30.0,
    launch_fraction: float = 0.2,
    shift_at: float | None = 0.5,
    **options: Any,
) -> Dataset:
    """A finished shop: the first ``n_events`` events of :meth:`ShopSimulator.spanning`.

    Every item record is included, at its launch time. Arguments are those of
    :meth:`ShopSimulator.spanning`; the same arguments give the same shop.
    """
    simulator = ShopSimulator.spanning(
        n_events, days, n_users=n_users, n_items=n_items, seed=seed,
        launch_fraction=launch_fraction, shift_at=shift_at, **options,
    )
    events = simulator.next_events(n_events)
    report = CleaningReport(rows_read=n_events, rows_kept=n_events)
    return Dataset(name="synthetic-shop", events=events, items=simulator.items(),
                   report=report, basket_key="session")
