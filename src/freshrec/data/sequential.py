"""A generated shop whose next item depends on the order of the last few: for sequence models.

The other generated shop (:mod:`freshrec.data.synthetic`) plants tastes,
popularity and launches, but no order beyond the session: any model that
counts co-occurrence finds all of it. This one states a structure only the
order of a user's items reveals, so that a sequence-aware source can be
checked to learn order at all, on a stream with the rest of a real log's
traits (noise, popularity, new items, new users):

* **paths**: items come in ordered runs of 5 to 12 steps (a course
  curriculum, a TV series, the marks of a product line), each in one
  category; step titles share the path's words and carry the step number
  ("Rust Data module 3: loops"), so content features place a new item near
  its path;
* **hubs**: some items (a category's "basics" modules, about 5% of the
  catalog) sit inside several paths of their category, never first or last.
  After a hub a user continues the path they came from, so the item before
  the hub decides what follows it: the last item alone does not tell the
  next one, the last two do;
* **interleaving**: each user follows one to three paths at a time and takes
  the next step of one of them, picked at random; the step a user takes next
  often continues the path of the second or third last item, not the last;
* **noise**: 17% of events are an item the user had not met, half drawn by
  popularity and half uniformly; a user sometimes starts a new path (most
  often in one of their one or two favourite categories, led by popular
  paths), often past its first step (a series joined mid-season), skips a
  step now and then (and a hub already taken on another path), and drops a
  path now and then, so early steps are more popular than late ones;
* **launches**: 30% of the paths (with their items) launch mid-stream,
  uniformly between 5% and 95% of the span, with a novelty boost, so every
  split leaves new items after it; users arrive over the whole span, so
  every split leaves new users after it too.

Each event is one step: a ``view``, or a ``purchase`` for one in five; no
user meets an item twice, and events are not grouped in baskets (each is a
request, as for MovieLens). Timestamps increase; a seed fixes everything.
Only numpy is used.

At the replay's size (``freshrec replay sequential``: 80,000 events, HR@10
after the median) popularity reaches 0.05 and item-kNN 0.49: summing the
similarities of a user's last 20 items alike, it cannot tell which of them
come last. On a smaller shop (tests/data/test_sequential.py) the next steps
of the paths of the last three items hit 0.65 of the time, the items met
most often next to the last one 0.44. As the items a user has met are
excluded, the steps behind them are gone from the candidates: which way a
path runs tells little beyond what the recency of the last few items does.

>>> shop = simulate_sequential_shop(n_users=40, n_items=120, n_events=600, seed=1)
>>> len(shop.dataset.events), len(shop.dataset.items), shop.dataset.basket_key is None
(600, 120, True)
>>> min(len(path) for path in shop.paths) >= 5 and max(len(path) for path in shop.paths) <= 12
True
>>> shop.dataset.events == generate_sequential_shop(40, 120, 600, seed=1).events
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from freshrec.data.dataset import CleaningReport, Dataset
from freshrec.data.synthetic import DAY, DEFAULT_START
from freshrec.records import Event, Item

# category -> (what a step is called, subjects that name its paths, topics of its steps)
CATEGORIES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "programming": ("module", ("python", "rust", "web", "data", "cloud", "mobile", "security",
                               "databases", "testing", "graphics", "networks", "compilers"),
                    ("variables", "loops", "functions", "recursion", "types", "errors",
                     "concurrency", "memory", "interfaces", "performance", "deployment",
                     "debugging")),
    "languages": ("lesson", ("spanish", "french", "german", "italian", "japanese", "korean",
                             "portuguese", "mandarin", "arabic", "dutch", "greek", "swedish"),
                  ("greetings", "numbers", "travel", "food", "family", "past tense",
                   "future tense", "shopping", "weather", "directions", "work", "idioms")),
    "cooking": ("class", ("baking", "pastry", "grilling", "vegan", "sushi", "curry", "pasta",
                          "bread", "fermentation", "barbecue", "dessert", "tapas"),
                ("knife skills", "sauces", "dough", "seasoning", "stocks", "plating", "roasting",
                 "frying", "braising", "emulsions", "glazes", "pickling")),
    "drama": ("episode", ("harbour", "winter", "crown", "orchard", "signal", "lantern",
                          "frontier", "empire", "tide", "ember", "hollow", "meridian"),
              ("the arrival", "the letter", "the storm", "the trial", "the betrayal",
               "the wedding", "the escape", "the return", "the reckoning", "the secret",
               "the fire", "the verdict")),
    "music": ("lesson", ("guitar", "piano", "violin", "drums", "ukulele", "cello", "bass",
                         "saxophone", "flute", "trumpet", "harp", "banjo"),
              ("scales", "chords", "rhythm", "posture", "arpeggios", "improvisation",
               "sight reading", "dynamics", "tuning", "vibrato", "timing", "repertoire")),
    "fitness": ("week", ("strength", "yoga", "running", "pilates", "cycling", "mobility",
                         "boxing", "rowing", "swimming", "climbing", "kettlebell", "core"),
                ("warm-up", "endurance", "intervals", "recovery", "balance", "flexibility",
                 "power", "breathing", "form", "tempo", "stamina", "cool-down")),
    "photography": ("workshop", ("portrait", "landscape", "street", "wildlife", "macro", "night",
                                 "studio", "film", "drone", "wedding", "aerial", "product"),
                    ("exposure", "composition", "lighting", "focus", "aperture", "editing",
                     "colour", "framing", "shutter speed", "lenses", "flash", "printing")),
    "cameras": ("mark", ("kestrel", "aurora", "vega", "lumen", "orbis", "falcon", "comet",
                         "zephyr", "atlas", "nimbus", "quasar", "summit"),
                ("sensor", "autofocus", "battery", "viewfinder", "stabiliser", "weather sealing",
                 "video", "burst rate", "screen", "storage", "lens mount", "connectivity")),
}
OWN_STEPS = (5, 10)
"""Items of a path's own, inclusive bounds; with at most two hubs a path has 5 to 12 steps."""
MAX_HUBS_PER_PATH = 2
HUB_SHARE = 0.05
PATHS_PER_HUB = (2, 5)
LATE_PATH_SHARE = 0.3
LAUNCH_WINDOW = (0.05, 0.95)
"""Where in the span late paths launch, as shares of it."""
NOVELTY_BOOST = 3.0
NOVELTY_DAYS = 10.0
NOISE = 0.17
"""Share of events that are not a path step: half popular items, half uniform ones."""
AT_ONCE = (0.35, 0.4, 0.25)
"""How many users follow one, two or three paths at a time."""
START_NEW = 0.12
"""Chance that a user below their number of paths at a time starts another one."""
DROP = 0.04
"""Chance that a user leaves a path after a step."""
JOIN_LATER = 0.4
"""Chance that a user starts a path past its first step (up to its middle), as one starts
a series mid-season or buys a line's third mark without the first two."""
SKIP = 0.1
"""Chance that a user skips a step (it stays behind them: they do not go back for it)."""
FOCUS = 0.85
"""Chance that a new path is in one of the user's favourite categories."""
PURCHASE = 0.2
SPAN_DAYS = 180.0
LIFETIME = (0.1, 0.4)
"""How long a user stays, as shares of the span."""
EXTRA_ACTIONS = 1.12
"""Users are given this many times the events asked for; the stream keeps the earliest."""


@dataclass(frozen=True)
class SequentialShop:
    """The generated dataset with the structure behind it (item ids of each path, in order)."""

    dataset: Dataset
    paths: tuple[tuple[str, ...], ...]

    @property
    def hubs(self) -> frozenset[str]:
        """Items that sit in more than one path."""
        counts: dict[str, int] = {}
        for path in self.paths:
            for item in path:
                counts[item] = counts.get(item, 0) + 1
        return frozenset(item for item, n in counts.items() if n > 1)


@dataclass
class _Catalog:
    items: list[Item]
    paths: list[list[int]]
    path_category: list[int]
    path_launch: np.ndarray
    path_appeal: np.ndarray
    item_appeal: np.ndarray


def generate_sequential_shop(n_users: int = 3000, n_items: int = 1500, n_events: int = 80_000,
                             seed: int = 0) -> Dataset:
    """The events and catalog of :func:`simulate_sequential_shop`."""
    return simulate_sequential_shop(n_users, n_items, n_events, seed).dataset


def simulate_sequential_shop(n_users: int = 3000, n_items: int = 1500, n_events: int = 80_000,
                             seed: int = 0) -> SequentialShop:
    """A shop of ``n_items`` items in paths and ``n_events`` events of up to ``n_users`` users."""
    if n_items < 2 * OWN_STEPS[1] or n_users < 1 or n_events < 1:
        raise ValueError(f"a sequential shop needs at least {2 * OWN_STEPS[1]} items, "
                         "a user and an event")
    rng = np.random.default_rng(seed)
    span = SPAN_DAYS * DAY
    catalog = _build_catalog(rng, n_items, span)
    raw: list[tuple[float, int, int, str]] = []
    arrivals = np.sort(rng.uniform(0.0, span, size=n_users))
    actions = _actions_per_user(rng, n_users, math.ceil(n_events * EXTRA_ACTIONS))
    simulator = _UserSimulator(rng, catalog)
    for user in range(n_users):
        lifetime = rng.uniform(*LIFETIME) * span
        gaps = rng.exponential(lifetime / actions[user], size=actions[user])
        times = DEFAULT_START + arrivals[user] + np.cumsum(gaps)
        for t, item, kind in simulator.run(user, times):
            raw.append((round(float(t), 3), user, item, kind))
    raw.sort(key=lambda entry: entry[:2])
    events = [Event(user=f"user-{user:05d}", item=catalog.items[item].id, type=kind,
                    timestamp=t, value=1.0 if kind == "purchase" else None, id=f"ev-{n}")
              for n, (t, user, item, kind) in enumerate(raw[:n_events])]
    items = sorted(catalog.items, key=lambda item: item.timestamp or 0.0)
    report = CleaningReport(rows_read=len(events), rows_kept=len(events))
    dataset = Dataset(name="sequential-shop", events=events, items=items, report=report)
    paths = tuple(tuple(catalog.items[i].id for i in path) for path in catalog.paths)
    return SequentialShop(dataset=dataset, paths=paths)


def _actions_per_user(rng: np.random.Generator, n_users: int, total: int) -> np.ndarray:
    """Skewed activity (a few heavy users) summing to at least ``total``, two or more each."""
    weight = rng.lognormal(0.0, 0.8, size=n_users)
    actions = np.maximum(2, np.round(weight / weight.sum() * total)).astype(np.int64)
    shortfall = total - int(actions.sum())
    if shortfall > 0:
        actions[np.argsort(-weight)[:shortfall]] += 1  # rounding lost a few: heaviest first
    return actions


def _build_catalog(rng: np.random.Generator, n_items: int, span: float) -> _Catalog:
    names = list(CATEGORIES)
    target_own = n_items - max(len(names), round(n_items * HUB_SHARE))
    own_counts: list[int] = []
    while sum(own_counts) < target_own:
        own_counts.append(int(rng.integers(OWN_STEPS[0], OWN_STEPS[1] + 1)))
    own_counts[-1] -= sum(own_counts) - target_own
    if own_counts[-1] < OWN_STEPS[0]:
        own_counts.pop()  # its items become hubs
    n_paths = len(own_counts)
    path_category = [n % len(names) for n in rng.permutation(n_paths).tolist()]
    path_launch = np.zeros(n_paths)
    late = rng.random(n_paths) < LATE_PATH_SHARE
    # whole seconds: an event at or after a launch stays so once rounded to the millisecond
    path_launch[late] = np.floor(rng.uniform(*LAUNCH_WINDOW, size=int(late.sum())) * span)
    path_appeal = 1.0 / (rng.permutation(n_paths) + 1.0) ** 0.7

    items: list[Item] = []
    paths: list[list[int]] = []
    pairs = {name: list(combinations(CATEGORIES[name][1], 2)) for name in names}
    for name in names:
        rng.shuffle(pairs[name])
    named = dict.fromkeys(names, 0)
    for p, own in enumerate(own_counts):
        category = names[path_category[p]]
        label, _, topics = CATEGORIES[category]
        first, second = pairs[category][named[category] % len(pairs[category])]
        sequel = named[category] // len(pairs[category])
        title = f"{first.title()} {second.title()}" + (f" {sequel + 1}" if sequel else "")
        named[category] += 1
        path = []
        for step, n in enumerate(rng.permutation(len(topics))[:own].tolist(), 1):
            topic = topics[n]
            path.append(len(items))
            items.append(Item(
                id=f"seq-{len(items):05d}", title=f"{title} {label} {step}: {topic}",
                text=f"Step {step} of the {first} {second} {category} path, on {topic}.",
                categories=(category,), timestamp=DEFAULT_START + float(path_launch[p])))
        paths.append(path)

    own_items = set(range(len(items)))
    for n in range(n_items - len(items)):
        c = n % len(names)
        category = names[c]
        label, _, topics = CATEGORIES[category]
        topic = topics[(n // len(names)) % len(topics)]
        number = n // (len(names) * len(topics))
        hub = len(items)
        hosts = _insert_hub(rng, hub, [p for p in range(n_paths) if path_category[p] == c],
                            paths, own_items)
        launch = min((float(path_launch[p]) for p in hosts), default=0.0)
        items.append(Item(
            id=f"seq-{hub:05d}",
            title=f"{category.title()} basics{f' {number + 1}' if number else ''}: {topic}",
            text=f"A {category} basics {label} on {topic}, shared by several {category} paths.",
            categories=(category,), timestamp=DEFAULT_START + launch))

    item_appeal = np.zeros(len(items))
    for p, path in enumerate(paths):
        for step, item in enumerate(path):
            item_appeal[item] += path_appeal[p] * (1.0 - DROP) ** step
    return _Catalog(items=items, paths=paths, path_category=path_category,
                    path_launch=path_launch, path_appeal=path_appeal,
                    item_appeal=np.maximum(item_appeal, 1e-3))


def _insert_hub(rng: np.random.Generator, hub: int, candidates: list[int], paths: list[list[int]],
                own_items: set[int]) -> list[int]:
    """Put ``hub`` inside some of ``candidates`` (paths of its category); the paths it joined.

    A hub goes neither first nor last, nor next to another hub, so that the item
    before it is a path's own, the one that tells which path goes on after it.
    """
    room = [p for p in candidates if sum(i not in own_items for i in paths[p]) < MAX_HUBS_PER_PATH]
    wanted = int(rng.integers(PATHS_PER_HUB[0], PATHS_PER_HUB[1] + 1))
    hosts = [room[n] for n in rng.permutation(len(room))[:wanted].tolist()]
    for p in hosts:
        path = paths[p]
        slots = [n for n in range(1, len(path))
                 if path[n - 1] in own_items and path[n] in own_items]
        path.insert(slots[int(rng.integers(len(slots)))], hub)
    return hosts


class _UserSimulator:
    """One user's steps through the paths, given the times of their actions."""

    def __init__(self, rng: np.random.Generator, catalog: _Catalog) -> None:
        self._rng = rng
        self._catalog = catalog
        order = np.argsort([item.timestamp or 0.0 for item in catalog.items], kind="stable")
        self._by_launch = order
        self._launch_sorted = np.asarray([catalog.items[i].timestamp or 0.0 for i in order])
        self._appeal_cumulative = np.cumsum(catalog.item_appeal[order])
        n_categories = len(CATEGORIES)
        self._paths_in = [[p for p, c in enumerate(catalog.path_category) if c == category]
                          for category in range(n_categories)]

    def run(self, user: int, times: np.ndarray) -> list[tuple[float, int, str]]:
        rng = self._rng
        favourites = rng.choice(len(CATEGORIES), size=int(rng.integers(1, 3)), replace=False)
        at_once = int(rng.choice(len(AT_ONCE), p=AT_ONCE)) + 1
        active: list[list[int]] = []  # [path, position of its next step]
        started: set[int] = set()
        seen: set[int] = set()
        steps: list[tuple[float, int, str]] = []
        for t in times.tolist():
            when = t - DEFAULT_START
            item: int | None = None
            if rng.random() < NOISE:
                item = self._noise(when, seen)
            else:
                if active and (len(active) >= at_once or rng.random() >= START_NEW):
                    item = self._continue(active, int(rng.integers(len(active))), seen)
                if item is None:
                    item = self._start(when, favourites, started, active, seen)
            if item is None:
                continue
            seen.add(item)
            steps.append((t, item, "purchase" if rng.random() < PURCHASE else "view"))
        return steps

    def _continue(self, active: list[list[int]], n: int, seen: set[int]) -> int | None:
        """The next step of active path ``n`` not met yet (a hub taken elsewhere is passed),
        or now and then the one after it."""
        path, position = active[n]
        steps = self._catalog.paths[path]
        if position + 2 < len(steps) and self._rng.random() < SKIP:
            position += 1
        while position < len(steps) and steps[position] in seen:
            position += 1
        if position == len(steps):
            del active[n]
            return None
        if position + 1 == len(steps) or self._rng.random() < DROP:
            del active[n]
        else:
            active[n][1] = position + 1
        return steps[position]

    def _start(self, when: float, favourites: np.ndarray, started: set[int],
               active: list[list[int]], seen: set[int]) -> int | None:
        """Start a path launched by ``when``: its first step (or the next not met yet)."""
        rng, catalog = self._rng, self._catalog
        anywhere = list(range(len(catalog.paths)))
        pools = [anywhere]
        if rng.random() < FOCUS:
            pools.insert(0, [p for c in favourites.tolist() for p in self._paths_in[c]])
        for pool in pools:  # a favourite category may have no path left: then any
            open_ = [p for p in pool if p not in started and catalog.path_launch[p] <= when]
            if not open_:
                continue
            age = when - catalog.path_launch[open_]
            boost = np.where(catalog.path_launch[open_] > 0,
                             NOVELTY_BOOST * np.exp(-age / (NOVELTY_DAYS * DAY)), 0.0)
            weight = catalog.path_appeal[open_] * (1.0 + boost)
            path = open_[int(rng.choice(len(open_), p=weight / weight.sum()))]
            started.add(path)
            entry = 0
            if rng.random() < JOIN_LATER:
                entry = int(rng.integers(1, len(catalog.paths[path]) // 2 + 1))
            active.append([path, entry])
            return self._continue(active, len(active) - 1, seen)
        return self._noise(when, seen)

    def _noise(self, when: float, seen: set[int]) -> int | None:
        """A launched item not met yet: by popularity or uniformly, half and half."""
        rng = self._rng
        launched = int(np.searchsorted(self._launch_sorted, DEFAULT_START + when, side="right"))
        for _ in range(5):
            if rng.random() < 0.5:
                total = self._appeal_cumulative[launched - 1]
                n = int(np.searchsorted(self._appeal_cumulative, rng.random() * total,
                                        side="right"))
                n = min(n, launched - 1)
            else:
                n = int(rng.integers(launched))
            item = int(self._by_launch[n])
            if item not in seen:
                return item
        return None
