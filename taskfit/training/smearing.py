"""Back from a log scale without the bias. A network that learns log(y) predicts the exp of the
mean log, the label's geometric mean given the inputs, which sits below its mean (by
exp(sigma**2 / 2) for log-normal errors): every prediction a little low, which RMSE pays for.
Duan's smearing estimate (JASA 1983) multiplies the predictions by the mean of exp(residual)
on held-out rows. In the model that is a shift of the Rescaling's offset on the log scale, so
the saved model, predict, evaluate and every export carry it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from taskfit.feed.splits import Splits
from taskfit.model.build import learned_scale_layer
from taskfit.model.losses import FLOOR
from taskfit.plan.plan import Plan
from taskfit.training.heldout import held_out_outputs

if TYPE_CHECKING:
    from taskfit.training.fit import Fitted


def smear(fitted: Fitted, plan: Plan, splits: Splits) -> dict[str, float]:
    """Each log-scale head's factor, applied to the model (head name -> the factor)."""
    heads = [h for h in plan.heads if h.target_transform != "none"]
    sizes = splits.sizes()
    if not heads or not sizes["train"]:
        return {}
    model = fitted.models.fit
    rows, held_out = held_out_outputs(fitted, plan, splits)
    factors = {}
    for head in heads:
        predicted = held_out[head.name]
        to_scale = getattr(np, head.target_transform)
        y = rows.y[head.name].astype(np.float64).reshape(-1)
        # floored as the loss floors it: an exp that underflowed to 0 stays finite on the scale
        guess = np.maximum(predicted.astype(np.float64).reshape(-1), FLOOR[head.target_transform])
        factor = float(np.mean(np.exp(to_scale(y) - to_scale(guess))))
        if not np.isfinite(factor) or factor <= 0:
            continue
        layer = learned_scale_layer(model, plan, head)
        layer.offset = float(layer.offset) + float(np.log(factor))
        factors[head.name] = factor
    if factors:  # Keras's compiled evaluate and predict hold the old offset as a constant
        named = vars(fitted.models).get("named")  # the saved model, if built already
        for compiled in (fitted.trained, model, *([named] if named is not None else [])):
            compiled.test_function = compiled.predict_function = None
    return factors
