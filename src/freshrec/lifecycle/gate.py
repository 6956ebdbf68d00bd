"""The evaluation gate: a candidate replaces the champion only if it is not worse."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    metric: str
    candidate: dict[str, float]
    champion: dict[str, float] | None
    tolerance: float
    holdout: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(candidate: dict[str, float], champion: dict[str, float] | None, *,
           tolerance: float, holdout: dict[str, Any], metric: str = "hr") -> GateDecision:
    """Promote unless the candidate is worse than the champion by more than ``tolerance``.

    ``tolerance`` is relative: 0.02 accepts a candidate down to 98% of the champion's
    score (a fresher model that is as good is worth having).

    >>> decide({"hr": 0.30}, {"hr": 0.31}, tolerance=0.05, holdout={}).promote
    True
    >>> decide({"hr": 0.10}, {"hr": 0.31}, tolerance=0.05, holdout={}).reason
    'hr 0.1000 is below 95% of the champion (0.3100)'
    """
    if champion is None:
        return GateDecision(True, "no champion yet", metric, candidate, None, tolerance, holdout)
    floor = champion[metric] * (1.0 - tolerance)
    if candidate[metric] >= floor:
        reason = (f"{metric} {candidate[metric]:.4f} is within {tolerance:.0%} of or above "
                  f"the champion ({champion[metric]:.4f})")
        return GateDecision(True, reason, metric, candidate, champion, tolerance, holdout)
    reason = (f"{metric} {candidate[metric]:.4f} is below {1 - tolerance:.0%} of the champion "
              f"({champion[metric]:.4f})")
    return GateDecision(False, reason, metric, candidate, champion, tolerance, holdout)
