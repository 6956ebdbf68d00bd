"""Choosing hyperparameters on a validation slice of the training part.

The training part (the first half of the events, or whatever share ``--split``
asks for) is itself split 80/20 in time: candidates are fit on the
first 80% and replayed through the last 20% exactly as in the benchmark
(online contestants keep learning, frozen ones do not). The objective is HR@10
of the ``all`` cut, averaged over the request variants; the ALS grid is scored
on returning users only (see :data:`RETURNING_ONLY`). The events after the
split are never looked at. Ties go to the earlier candidate in grid order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from freshrec.data.dataset import Dataset
from freshrec.evaluation.contestants import build
from freshrec.evaluation.contestants.base import AlsParams, ContestantSettings, RiverParams
from freshrec.evaluation.plan import ReplayPlan, build_plan
from freshrec.evaluation.replay import ContestantResult, Progress, replay
from freshrec.records import Event

VALIDATION_FRACTION = 0.8
HALF_LIVES_DAYS = (0.25, 1.0, 3.0, 7.0, 30.0, 90.0, 365.0, 1825.0)
HISTORY_HALF_LIVES_DAYS = (1.0, 7.0, 30.0, 90.0, 365.0, 3650.0)
ALS_GRID = tuple(
    AlsParams(factors=factors, regularization=regularization, alpha=alpha, scaling=scaling)
    for factors in (32, 64, 128)
    for regularization in (0.01, 0.1)
    for alpha, scaling in ((1.0, "log"), (10.0, "log"), (1.0, "linear"))
)
RIVER_GRID = tuple(
    RiverParams(learning_rate=rate, negatives=negatives)
    for rate, negatives in ((0.02, 2), (0.05, 2), (0.02, 6), (0.05, 6), (0.1, 6), (0.05, 12))
)


def candidates(name: str, base: ContestantSettings) -> tuple[ContestantSettings, ...]:
    """The settings to try for contestant ``name`` (empty: nothing to tune)."""
    if name == "als-once":
        return tuple(replace(base, als=params) for params in ALS_GRID)
    if name == "decayed-popularity":
        return tuple(replace(base, popularity_half_life_days=h) for h in HALF_LIVES_DAYS)
    if name == "purchase-history":
        return tuple(replace(base, history_half_life_days=h) for h in HISTORY_HALF_LIVES_DAYS)
    if name == "river-biasedmf":
        return tuple(replace(base, river=params) for params in RIVER_GRID)
    return ()


TUNED_BY = {
    "als-once": ("als-once", "als-retrained", "implicit-online"),
    "decayed-popularity": ("decayed-popularity", "purchase-history"),
    "purchase-history": ("purchase-history",),
    "river-biasedmf": ("river-biasedmf",),
}
"""Which contestants' settings a tuning run decides (ALS is shared by the whole family)."""


def validation_plan(plan: ReplayPlan, dataset: Dataset, *, max_requests: int | None) -> ReplayPlan:
    """A replay plan over ``plan``'s training part only, split 80/20 in time."""
    events = [r for r in plan.training if isinstance(r, Event)]
    items = [r for r in plan.training if not isinstance(r, Event)]
    training_part = Dataset(name=f"{dataset.name}-validation", events=events, items=items,
                            basket_key=dataset.basket_key)
    return build_plan(training_part, train_fraction=VALIDATION_FRACTION,
                      max_requests=max_requests)


RETURNING_ONLY = frozenset({"als-once"})
"""Grids scored on returning users only: a frozen ALS model answers everyone else with
popularity, so on a stream of mostly new users (MovieLens) the overall HR would pick
its hyperparameters by noise."""


def objective(result: ContestantResult, *, returning_only: bool = False) -> float:
    """Mean HR@10 over the request variants, of cut ``all`` or of returning users only."""
    rates = []
    for cuts in result.metrics.values():
        n, hits = cuts["all"].n, cuts["all"].hit
        if returning_only and n > cuts["new-users"].n:
            n, hits = n - cuts["new-users"].n, hits - cuts["new-users"].hit
        if n:
            rates.append(hits / n)
    return sum(rates) / len(rates) if rates else 0.0


@dataclass
class TuningOutcome:
    """Each candidate's validation score, in grid order."""

    name: str
    candidates: tuple[ContestantSettings, ...]
    scores: list[float]

    @property
    def best(self) -> ContestantSettings:
        best = max(range(len(self.scores)), key=lambda n: (self.scores[n], -n))
        return self.candidates[best]


def tune(name: str, grid: tuple[ContestantSettings, ...], plan: ReplayPlan, *, k: int = 10,
         progress: Progress | None = None) -> TuningOutcome:
    """Replay every candidate through the validation plan and keep the scores."""
    scores: list[float] = []
    for n, settings in enumerate(grid):
        report = None
        if progress is not None:
            steps, offset = len(plan.steps), n * len(plan.steps)
            total = steps * len(grid)

            def report(done: int, _total: int, offset: int = offset, total: int = total) -> None:
                progress(offset + done, total)

        result = replay(build(name, settings), plan, k=k, progress=report)
        scores.append(objective(result, returning_only=name in RETURNING_ONLY))
    return TuningOutcome(name=name, candidates=grid, scores=scores)


def apply(settings: ContestantSettings, outcome: TuningOutcome) -> ContestantSettings:
    """``settings`` with the field(s) ``outcome`` decided set to the winner's."""
    best = outcome.best
    if outcome.name == "als-once":
        return replace(settings, als=best.als)
    if outcome.name == "decayed-popularity":
        return replace(settings, popularity_half_life_days=best.popularity_half_life_days)
    if outcome.name == "purchase-history":
        return replace(settings, history_half_life_days=best.history_half_life_days)
    if outcome.name == "river-biasedmf":
        return replace(settings, river=best.river)
    return settings


def describe(outcome: TuningOutcome) -> list[dict[str, object]]:
    """The grid and its scores, as JSON-ready rows."""
    rows = []
    for settings, score in zip(outcome.candidates, outcome.scores, strict=True):
        value: dict[str, object]
        if outcome.name == "als-once":
            value = asdict(settings.als)
        elif outcome.name == "river-biasedmf":
            value = asdict(settings.river)
        elif outcome.name == "decayed-popularity":
            value = {"half_life_days": settings.popularity_half_life_days}
        else:
            value = {"history_half_life_days": settings.history_half_life_days}
        rows.append({"params": value, "hr@10": score})
    return rows
