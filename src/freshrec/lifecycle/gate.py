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
           tolerance: float, holdout: dict[str, Any],
           metrics: tuple[str, ...] = ("hr", "hr_new")) -> GateDecision:
    """Promote unless the candidate is worse than the champion by more than ``tolerance``
    on any of ``metrics`` (all events, and discovery of items new to the user).

    ``tolerance`` is relative: 0.02 accepts a candidate down to 98% of the champion's
    score (a fresher model that is as good is worth having).

    >>> decide({"hr": 0.30, "hr_new": 0.1}, {"hr": 0.31, "hr_new": 0.1}, tolerance=0.05,
    ...        holdout={}).promote
    True
    >>> decide({"hr": 0.30, "hr_new": 0.01}, {"hr": 0.31, "hr_new": 0.1}, tolerance=0.05,
    ...        holdout={}).reason
    'hr_new 0.0100 is below 95% of the champion (0.1000)'
    """
    label = "+".join(metrics)
    if champion is None:
        return GateDecision(True, "no champion yet", label, candidate, None, tolerance, holdout)
    for metric in metrics:
        floor = champion.get(metric, 0.0) * (1.0 - tolerance)
        if candidate.get(metric, 0.0) < floor:
            reason = (f"{metric} {candidate.get(metric, 0.0):.4f} is below "
                      f"{1 - tolerance:.0%} of the champion ({champion.get(metric, 0.0):.4f})")
            return GateDecision(False, reason, label, candidate, champion, tolerance, holdout)
    reason = "; ".join(f"{m} {candidate.get(m, 0.0):.4f} vs champion {champion.get(m, 0.0):.4f}"
                       for m in metrics)
    return GateDecision(True, f"not worse beyond {tolerance:.0%}: {reason}", label, candidate,
                        champion, tolerance, holdout)
