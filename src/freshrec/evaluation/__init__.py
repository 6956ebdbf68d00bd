"""Offline evaluation: the replay benchmark and its contestants.

``freshrec replay <dataset>`` replays a dataset in time order: every
contestant is fit on the first half of the events (``--split`` moves that
share), then asked for top-10 before each later request and fed its events
afterwards. See
:mod:`freshrec.evaluation.replay` for the protocol and ``bench/README.md``
for how to run it.
"""

from freshrec.evaluation.benchmark import ReplayOptions, ReplayReport, run_replay
from freshrec.evaluation.datasets import DatasetSource, InlineSource
from freshrec.evaluation.metrics import CutTotals, RequestScore, score_request
from freshrec.evaluation.outputs import publish
from freshrec.evaluation.plan import ReplayPlan, build_plan
from freshrec.evaluation.replay import ContestantResult, replay

__all__ = [
    "ContestantResult",
    "CutTotals",
    "DatasetSource",
    "InlineSource",
    "ReplayOptions",
    "ReplayPlan",
    "ReplayReport",
    "RequestScore",
    "build_plan",
    "publish",
    "replay",
    "run_replay",
    "score_request",
]
