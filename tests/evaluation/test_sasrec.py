"""SASRec as a replay contestant: it learns order, validates on the training half only, and
is skipped with a clear message where torch is missing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from freshrec.data.dataset import Dataset
from freshrec.evaluation.contestants.base import SasrecParams
from freshrec.evaluation.contestants.popularity import Popularity
from freshrec.evaluation.plan import ReplayPlan, build_plan
from freshrec.evaluation.replay import ContestantResult, replay
from freshrec.records import Event, Item

TINY = SasrecParams(maxlen=12, hidden=32, blocks=1, heads=1, dropout=0.1,
                    learning_rate=5e-3, batch_size=64, max_epochs=60, patience=10)


def chains(n_items: int = 60, n_users: int = 240, walk: int = 10, seed: int = 0) -> Dataset:
    """Users walk one fixed cycle through the catalog, each from its own starting item.

    Every item is about equally popular, so popularity barely beats chance (10 of
    ``n_items``), while the next item is a function of the last one.
    """
    rng = np.random.default_rng(seed)
    cycle = [f"i{n}" for n in rng.permutation(n_items)]
    starts = rng.integers(0, n_items, size=n_users)
    begins = rng.uniform(0.0, 1000.0, size=n_users)  # users interleave in time
    events = [Event(f"u{u}", cycle[(int(starts[u]) + step) % n_items], "view",
                    float(begins[u] + step))
              for u in range(n_users) for step in range(walk)]
    events.sort(key=lambda e: e.timestamp)
    items = [Item(item, timestamp=0.0) for item in cycle]
    return Dataset("chains", events, items)


@pytest.fixture(scope="module")
def plan() -> ReplayPlan:
    return build_plan(chains())


def hit_rate(result: ContestantResult, cut: str) -> tuple[int, float]:
    totals = result.metrics["unseen"][cut]
    return totals.n, totals.hit / max(1, totals.n)


@pytest.mark.seq
def test_sasrec_learns_the_order_popularity_cannot(plan: ReplayPlan) -> None:
    from freshrec.evaluation.contestants.sasrec import Sasrec

    sasrec = replay(Sasrec(TINY, seed=1), plan)
    popular = replay(Popularity(), plan)
    (n, sasrec_hr), (n_popular, popular_hr) = hit_rate(sasrec, "all"), hit_rate(popular, "all")
    assert n == n_popular > 500
    assert popular_hr < 0.4
    assert sasrec_hr > 0.8
    # users it never saw in training get their next item too: it reads their input
    n_new, new_hr = hit_rate(sasrec, "new-users")
    assert n_new > 50 and new_hr > 0.7
    assert sasrec.training is not None and popular.training is None
    assert sasrec.training["best_epoch"] <= sasrec.training["epochs"]  # type: ignore[operator]


@pytest.mark.seq
def test_a_position_never_sees_later_items() -> None:
    import torch

    from freshrec.evaluation.contestants._sasrec_net import SasrecNet

    torch.manual_seed(0)
    net = SasrecNet(n_items=10, maxlen=6, hidden=8, blocks=2, heads=1, dropout=0.0).eval()
    with torch.inference_mode():
        before = net(torch.tensor([[0, 1, 2, 3, 4, 5]]))[0]
        after = net(torch.tensor([[0, 1, 2, 9, 8, 7]]))[0]
    assert torch.allclose(before[:3], after[:3])
    assert not torch.allclose(before[3], after[3])


@pytest.mark.seq
def test_validation_reads_only_the_end_of_the_training_half(plan: ReplayPlan) -> None:
    from freshrec.evaluation.contestants.sasrec import Sasrec

    model = Sasrec(TINY, seed=1)
    replay(model, plan)  # the harness hands fit plan.training, and nothing else
    training = [r for r in plan.training if isinstance(r, Event)]
    last = {e.user: e for e in training}  # each user's latest training event
    assert model.validated_on, "some users must be validated"
    assert all(last[e.user] == e for e in model.validated_on)
    cutoff = training[-1].timestamp
    assert all(e.timestamp <= cutoff for e in model.validated_on)
    scored = {e for step in plan.steps for e in step.events}
    assert not scored & set(model.validated_on)
    assert model.log is not None and 1 <= model.log.best_epoch <= model.log.epochs


@pytest.mark.seq
def test_runs_are_deterministic(plan: ReplayPlan) -> None:
    from freshrec.evaluation.contestants.sasrec import Sasrec

    quick = SasrecParams(maxlen=12, hidden=16, blocks=1, max_epochs=3, patience=3)
    first, second = Sasrec(quick, seed=3), Sasrec(quick, seed=3)
    first.fit(plan.training)
    second.fit(plan.training)
    assert first.recommend("u0", 10, ()) == second.recommend("u0", 10, ())
    assert first.log is not None and second.log is not None
    assert first.log.history == second.log.history


@pytest.mark.seq
def test_new_items_are_never_recommended_and_strangers_get_popularity(
        plan: ReplayPlan) -> None:
    from freshrec.evaluation.contestants.sasrec import Sasrec

    model = Sasrec(SasrecParams(maxlen=12, hidden=16, blocks=1, max_epochs=2), seed=0)
    model.fit(plan.training)
    model.add_item(Item("brand-new", timestamp=2000.0))
    model.learn_one(Event("someone", "brand-new", "view", 2001.0))
    assert "brand-new" in model.unscorable
    popular = Popularity()
    popular.fit(plan.training)
    assert model.recommend("someone", 5, ()) == popular.recommend("someone", 5, ())
    model.learn_one(Event("someone", "i3", "view", 2002.0))
    answer = model.recommend("someone", 100, {"i3"})
    assert "brand-new" not in answer and "i3" not in answer and answer


def test_replay_without_torch_skips_sasrec_with_the_install_hint() -> None:
    # a fresh interpreter where ``import torch`` fails, as it does without the seq extra
    script = ("import sys; sys.modules['torch'] = None\n"
              "from freshrec.cli import app\n"
              "app(['replay', 'synthetic', '--limit', '1500', '--jobs', '0', '--no-tune',\n"
              "     '--contestants', 'sasrec,popularity', '--out', sys.argv[1]])\n")
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-c", script, out], capture_output=True,
                              text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "skipped sasrec" in line]
    assert len(lines) == 1, done.stdout
    assert "pip install 'freshrec[seq]'" in lines[0]
    assert "popularity" in done.stdout
