"""An always-valid sequential test: the mixture sequential probability ratio test (mSPRT).

Johari, Pekelis, Koomen and Walsh, "Always Valid Inference: Bringing Sequential
Analysis to A/B Testing" (2017; Operations Research 2022). A fixed-horizon t-test
read every day declares far more false differences than its alpha says; the mSPRT's
p-value and confidence sequence stay valid whenever they are looked at, as often as
anyone likes, and the experiment may be stopped at any of those looks.

The statistic: the difference of the arms' means ``d`` estimates ``theta`` with
variance ``V = s_a^2 / n_a + s_b^2 / n_b`` (the user is the unit: one value per user).
Mixing the likelihood ratio of ``theta`` against 0 over a normal prior
``theta ~ N(0, tau^2)`` gives

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2)))

and under no difference ``Lambda`` is a martingale, so by Ville's inequality it ever
exceeds ``1 / alpha`` with probability at most alpha. The always-valid p-value is
the running minimum of ``1 / Lambda``; the confidence sequence is every ``theta``
whose ratio stays below ``1 / alpha``: ``d +- sqrt(V (V + tau^2) / tau^2 *
(2 log(1 / alpha) + log((V + tau^2) / V)))``, intersected over the looks.

``tau`` sets which effects the test is quickest to find; it is taken relative to the
metric's spread (``tau = relative_tau * s``, 0.1 by default: a tenth of a per-user
standard deviation, the size of effects online experiments usually chase). Variances
are plugged in from the data, as Johari et al. do; with few users the plug-in is
noisy, so no decision is made before ``min_users`` per arm.

>>> test = SequentialTest(alpha=0.05)
>>> look = test.look(Arm(10_000, 0.10, 0.09), Arm(10_000, 0.14, 0.12))
>>> look.decision, look.low > 0
('b better', True)
>>> SequentialTest().look(Arm(500, 0.1, 0.09), Arm(500, 0.1, 0.09)).decision
'no difference yet'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_RELATIVE_TAU = 0.1
MIN_USERS = 30
"""Per arm, before any decision: the plug-in variance needs some users to be meaningful."""


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm's per-user values: how many users, their mean and variance."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of_sums(cls, n: int, total: float, squares: float) -> Arm:
        """From the count, sum and sum of squares of the per-user values."""
        if n == 0:
            return cls(0, 0.0, 0.0)
        mean = total / n
        return cls(n, mean, max(squares / n - mean * mean, 0.0) * n / max(n - 1, 1))


@dataclass(frozen=True, slots=True)
class Interval:
    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Look:
    """One look at the data: the difference (b - a), its confidence sequence, the p-value."""

    difference: float
    low: float
    high: float
    p_value: float
    decision: str
    """'b better', 'a better' or 'no difference yet'."""


@dataclass(frozen=True, slots=True)
class SequentialState:
    """What a test keeps between looks (so the p-value and the interval only tighten)."""

    p_value: float = 1.0
    low: float = -math.inf
    high: float = math.inf


def half_width(variance: float, tau2: float, alpha: float) -> float:
    """The confidence sequence's half width for an estimate of variance ``variance``."""
    if variance <= 0:
        return 0.0
    return math.sqrt(variance * (variance + tau2) / tau2
                     * (2 * math.log(1 / alpha) + math.log((variance + tau2) / variance)))


def mixture_ratio(estimate: float, variance: float, tau2: float) -> float:
    """The normal-mixture likelihood ratio of the estimate against 0, capped for floats."""
    if variance <= 0:
        return 1.0
    exponent = tau2 * estimate * estimate / (2 * variance * (variance + tau2))
    return math.sqrt(variance / (variance + tau2)) * math.exp(min(exponent, 700.0))


class SequentialTest:
    """The mSPRT for the difference of two arms' means; see the module docstring."""

    def __init__(self, alpha: float = 0.05, relative_tau: float = DEFAULT_RELATIVE_TAU,
                 min_users: int = MIN_USERS) -> None:
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        self.alpha = alpha
        self.relative_tau = relative_tau
        self.min_users = min_users

    def look(self, a: Arm, b: Arm, before: SequentialState | None = None) -> Look:
        """The test after this look; ``before`` is what earlier looks left (else none)."""
        before = before or SequentialState()
        difference = b.mean - a.mean
        if min(a.n, b.n) < self.min_users:
            return Look(difference, before.low, before.high, before.p_value,
                        self.decide(before.p_value, before.low, before.high))
        variance = a.variance / a.n + b.variance / b.n
        spread = math.sqrt(max((a.variance + b.variance) / 2, 1e-12))
        tau2 = (self.relative_tau * spread) ** 2
        if variance <= 0:  # every user alike in both arms: nothing to go on
            return Look(difference, before.low, before.high, before.p_value,
                        self.decide(before.p_value, before.low, before.high))
        p_value = min(before.p_value, 1.0 / mixture_ratio(difference, variance, tau2))
        width = half_width(variance, tau2, self.alpha)
        low = max(before.low, difference - width)
        high = min(before.high, difference + width)
        if low > high:  # the intersection emptied (possible when variances are estimated)
            low = high = difference
        return Look(difference, low, high, p_value, self.decide(p_value, low, high))

    def state(self, look: Look) -> SequentialState:
        return SequentialState(look.p_value, look.low, look.high)

    def interval(self, arm: Arm) -> Interval:
        """A confidence sequence for one arm's mean (the same mixture, against its value)."""
        if arm.n == 0:
            return Interval(math.nan, math.nan, math.nan)
        variance = arm.variance / arm.n
        tau2 = (self.relative_tau * math.sqrt(max(arm.variance, 1e-12))) ** 2
        width = half_width(variance, tau2, self.alpha) if arm.n >= 2 else math.inf
        return Interval(arm.mean, arm.mean - width, arm.mean + width)

    def decide(self, p_value: float, low: float, high: float) -> str:
        """'b better', 'a better' or 'no difference yet', from a test's state."""
        if p_value <= self.alpha and low > 0:
            return "b better"
        if p_value <= self.alpha and high < 0:
            return "a better"
        return "no difference yet"
