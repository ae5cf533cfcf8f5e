"""What a finished fit's learning curves say, in words: training cut short by the epoch budget,
or a model that learned its training rows by heart early on. `train` prints it with its
warnings and `report` shows it, both from the same history (history.csv)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from taskfit.data.columns import RARE
from taskfit.recipe.table import higher_is_better
from taskfit.spec.keys import Spec

LAST_TENTH = 10  # without early stopping: the best epoch in the budget's last tenth is still rising
# val_loss ended at least this much above its best ... (breast_cancer's default run ends 30%
# above its best, epoch 6, and tests at 0.96 accuracy: early stopping handled it, no word)
RISE = 0.50
FALL = 0.10  # ... while the training loss fell at least this much after that epoch
EARLY = 10  # epochs: a best epoch at or before this (or the budget's tenth) is early


def fit_diagnosis(
    history: Mapping[str, Sequence[float | str]],
    budget: int,
    monitor: str = "val_loss",
    patience: int | None = None,
    suspects: Mapping[str, float] | None = None,
) -> list[str]:
    """The problems the curves show, each with what to do; none for a healthy fit. `suspects`:
    the category columns whose rare values let rows be learned by heart (data.columns.
    memorisable), named when the curves show overfitting."""
    found = []
    watched = _numbers(history.get(monitor, ()))
    if watched and len(watched) >= budget:
        pick = max if higher_is_better(monitor) else min
        best = watched.index(pick(watched)) + 1
        # the best epoch in the budget's last tenth (within patience of the end, if less): a
        # patience as long as the budget would call any best epoch "still improving"
        last = max(1, budget // LAST_TENTH)
        window = min(patience, last) if patience is not None else last
        if budget - best < window:
            found.append(
                f"all {budget} epochs ran and {monitor} was still improving (best at epoch "
                f"{best}): training was cut short. Give training.epochs: {2 * budget} (early "
                "stopping still ends the run once it stops improving)"
            )
    validation, training = _numbers(history.get("val_loss", ())), _numbers(history.get("loss", ()))
    if len(validation) > 1 and len(training) == len(validation):
        best = validation.index(min(validation))
        rise = validation[-1] / validation[best] - 1 if validation[best] > 0 else 0.0
        fall = 1 - training[-1] / training[best] if training[best] > 0 else 0.0
        if best + 1 <= max(EARLY, budget // LAST_TENTH) and rise >= RISE and fall >= FALL:
            found.append(
                f"overfitting: val_loss was lowest at epoch {best + 1} and ended {rise:.0%} "
                f"above it while the training loss fell {fall:.0%}; the model learns the "
                f"training rows rather than the pattern (the saved weights are the best "
                f"epoch's when early stopping restores them). {_culprits(suspects or {})}"
            )
    return found


def _culprits(suspects: Mapping[str, float]) -> str:
    if suspects:
        named = ", ".join(f"{c} ({share:.0%} of rows)" for c, share in suspects.items())
        return (
            f"Likely here: the rare values of {named}, each seen at most {RARE} times, tell "
            "rows apart: data.ignore the column or merge its rare values; dropout on the hidden "
            "layers (model.layers: [{units: 64, dropout: 0.2}, ...]) helps too"
        )
    return (
        "Try dropout on the hidden layers (model.layers: [{units: 64, dropout: 0.2}, ...]), "
        "smaller layers, or more rows; a column that tells rows apart does this too (taskfit "
        "check lists each column's distinct values: data.ignore it)"
    )


def curves_say(
    spec: Spec,
    history: Mapping[str, Sequence[float | str]],
    suspects: Mapping[str, float] | None = None,
) -> list[str]:
    """fit_diagnosis for this spec's budget and early stopping."""
    stopping = spec.training.early_stopping
    epochs = spec.training.epochs
    if stopping is None:
        return fit_diagnosis(history, epochs, suspects=suspects)
    return fit_diagnosis(history, epochs, stopping.monitor, stopping.patience, suspects)


def _numbers(column: Sequence[float | str]) -> list[float]:
    return [float(v) for v in column if isinstance(v, float | int)]
