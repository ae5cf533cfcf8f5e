"""Regression targets learned on another scale: a right-skewed label that is never negative
(prices, counts, durations) trains as its log, while metrics and predictions stay in its units.

Each transform is named as its function in `math`, NumPy and `keras.ops` (log, log1p), so the
rule here (standard library: `check` runs it) and the training code call the same thing.
Its inverse, inside the saved model, is exp and then `offset` (expm1 = exp - 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from taskfit.recipe.table import TARGET_TRANSFORMS, TargetRule

INVERSE_OFFSET = {"log": 0.0, "log1p": -1.0}  # the label = exp(learned) + offset
DOMAIN = {"log": "every label above 0", "log1p": "every label 0 or above"}


def in_domain(transform: str, smallest: float) -> bool:
    return smallest > 0 if transform == "log" else smallest >= 0


def skewness(values: Sequence[float]) -> float:
    """The sample skewness (the third standardised moment); 0 for fewer than three values or
    a constant column."""
    n = len(values)
    if n < 3:
        return 0.0
    mean = math.fsum(values) / n
    m2 = math.fsum((v - mean) ** 2 for v in values) / n
    if m2 <= 0:
        return 0.0
    return math.fsum((v - mean) ** 3 for v in values) / n / m2**1.5


@dataclass(frozen=True)
class TargetShape:
    """What the rule needs to know of a regression label's values."""

    smallest: float
    skewness: float
    after: dict[str, float]  # transform -> the skewness of the transformed labels, where defined

    @classmethod
    def of(cls, values: Sequence[float]) -> TargetShape:
        smallest = min(values)
        after = {
            t: skewness([getattr(math, t)(v) for v in values])
            for t in TARGET_TRANSFORMS
            if in_domain(t, smallest)
        }
        return cls(smallest, skewness(values), after)


def choose(rule: TargetRule, shape: TargetShape) -> tuple[str, str]:
    """What `auto` picks by the table's rule: (the transform, or none; why, in words)."""
    skew = shape.skewness
    if skew <= rule.skewness_above:
        return "none", f"skewness {skew:.2f}, not above {rule.skewness_above:g}"
    for transform in rule.order:
        after = shape.after.get(transform)
        if after is not None and abs(after) < abs(skew):
            return transform, f"{DOMAIN[transform]}, skewness {skew:.2f} ({after:.2f} after)"
    return "none", f"skewness {skew:.2f}, but no transform fits labels down to {shape.smallest:g}"
