"""The contestants of the replay benchmark, one module each, and how to build them by name.

>>> names(baskets=True)[:3]
('freshrec', 'freshrec-noseq', 'popularity')
>>> "purchase-history" in names(baskets=False)
False
>>> build("popularity", ContestantSettings()).name
'popularity'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from freshrec.evaluation.contestants.base import (
    AlsParams,
    Contestant,
    ContestantSettings,
    RiverParams,
    SasrecParams,
)


def _freshrec(settings: ContestantSettings, **overrides: Any) -> Contestant:
    from freshrec.evaluation.contestants.freshrec_engine import FreshrecEngine

    # freshrec retrains less often than als-retrained (weekly in data time, or every
    # 10% of the stream): between trainings it learns online, which is its point.
    every_events = (None if settings.retrain_every_events is None
                    else 2 * settings.retrain_every_events)
    every_seconds = (None if settings.retrain_every_seconds is None
                     else 7 * settings.retrain_every_seconds)
    return FreshrecEngine(seed=settings.seed, every_events=every_events,
                          every_seconds=every_seconds, **overrides)


def _freshrec_without_sequence(settings: ContestantSettings) -> Contestant:
    # The same engine without its sequence model, side by side in the same run: what
    # the order of a user's last items adds, request by request.
    return _freshrec(settings, name="freshrec-noseq", sequence_model=False)


def _popularity(settings: ContestantSettings) -> Contestant:
    from freshrec.evaluation.contestants.popularity import Popularity

    return Popularity()


def _decayed_popularity(settings: ContestantSettings) -> Contestant:
    from freshrec.evaluation.contestants.decayed_popularity import DecayedPopularity

    return DecayedPopularity(settings.popularity_half_life_days)


def _als_once(settings: ContestantSettings) -> Contestant:
    from freshrec.evaluation.contestants.als_once import AlsOnce

    return AlsOnce(settings.als, seed=settings.seed)


def _als_retrained(settings: ContestantSettings) -> Contestant:
    from freshrec.evaluation.contestants.als_retrained import AlsRetrained

    if settings.retrain_every_events is not None:
        return AlsRetrained(settings.als, seed=settings.seed,
                            every_events=settings.retrain_every_events)
    return AlsRetrained(settings.als, seed=settings.seed,
                        every_seconds=settings.retrain_every_seconds)


def _implicit_online(settings: ContestantSettings) -> Contestant:
    from freshrec.evaluation.contestants.implicit_online import ImplicitOnline

    return ImplicitOnline(settings.als, seed=settings.seed)


def _item_knn(settings: ContestantSettings) -> Contestant:
    from freshrec.evaluation.contestants.item_knn import ItemKnn

    return ItemKnn()


def _river(settings: ContestantSettings) -> Contestant:
    from freshrec.evaluation.contestants.river_mf import RiverBiasedMF

    return RiverBiasedMF(settings.river, seed=settings.seed)


def _purchase_history(settings: ContestantSettings) -> Contestant:
    from freshrec.evaluation.contestants.purchase_history import PurchaseHistory

    return PurchaseHistory(settings.history_half_life_days, settings.popularity_half_life_days)


def _sasrec(settings: ContestantSettings) -> Contestant:
    from freshrec.evaluation.contestants.sasrec import Sasrec

    return Sasrec(settings.sasrec, seed=settings.seed)


BUILDERS: dict[str, Callable[[ContestantSettings], Contestant]] = {
    "freshrec": _freshrec,
    "freshrec-noseq": _freshrec_without_sequence,
    "popularity": _popularity,
    "decayed-popularity": _decayed_popularity,
    "als-once": _als_once,
    "als-retrained": _als_retrained,
    "implicit-online": _implicit_online,
    "item-knn": _item_knn,
    "river-biasedmf": _river,
    "purchase-history": _purchase_history,
    "sasrec": _sasrec,
}
"""Every contestant by name, in the order the report lists them."""

BASKETS_ONLY = frozenset({"purchase-history"})
"""Contestants that only make sense where people buy again (retail)."""


def names(*, baskets: bool) -> tuple[str, ...]:
    """The contestants that run on a dataset with (``baskets=True``) or without baskets."""
    return tuple(name for name in BUILDERS if baskets or name not in BASKETS_ONLY)


def build(name: str, settings: ContestantSettings) -> Contestant:
    """A fresh contestant by name."""
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown contestant {name!r} (known: {', '.join(BUILDERS)})") from None
    return builder(settings)


__all__ = [
    "BASKETS_ONLY",
    "BUILDERS",
    "AlsParams",
    "Contestant",
    "ContestantSettings",
    "RiverParams",
    "SasrecParams",
    "build",
    "names",
]
