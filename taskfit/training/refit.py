"""training.refit: a fresh model on the training and validation rows together, for the epochs
the first fit kept, at the learning rates it logged."""

from __future__ import annotations

import dataclasses
from typing import Any

from taskfit import progress
from taskfit.feed.splits import Splits
from taskfit.plan.checking import Checked
from taskfit.training.fit import Fitted, Replay, fit_plan, seed_everything


def refit(
    keras: Any, checked: Checked, splits: Splits, first: Fitted, verbose: int | str
) -> tuple[Fitted, str]:
    """training.refit: a fresh model (its preprocessing fitted again) on the training and
    validation rows together, for the epochs the first fit kept, at their learning rates. The
    first fit's history, best epoch and curves stay the run's; the refit's model is its result.
    Stopped or diverged, the first fit's model is kept: (it, a warning saying so)."""
    plan = checked.plan
    epochs = first.best_epoch or first.epochs
    rates = [] if plan.schedule else first.history.get("learning_rate", [])[:epochs]
    whole = splits.joined()
    seed_everything(keras, checked.loaded.spec.training.seed)
    progress.announce(f"refitting on train + validation for {epochs} epochs")
    again = fit_plan(keras, checked, plan, whole, verbose=verbose, replay=Replay(epochs, rates))
    kept = "kept the model fitted on the training split alone"
    if again.interrupted:
        return first, f"Ctrl-C during the refit on train + validation; {kept}"
    if again.diverged:
        epoch, _, loss = again.diverged
        return first, f"the refit's loss became {loss} in epoch {epoch}; {kept}"
    done = {"epochs": epochs, "rows": whole.sizes()["train"], "seconds": round(again.seconds, 3)}
    return dataclasses.replace(
        first,
        models=again.models,
        trained=again.trained,
        seconds=first.seconds + again.seconds,
        refit=done,
    ), ""
