"""What a plan chooses for one loss, optimizer or schedule (`Built`: its Keras class and every
parameter) and for one head's loss in every form the spec can write (`LossPlan`), each checked
against the recommendation table's row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from taskfit.config.schema import Choice
from taskfit.config.yamlfile import dotted
from taskfit.errors import SpecError
from taskfit.recipe.table import Named, Recipe, Table
from taskfit.spec.lossform import LossSpec

# where (a spec path), what: a choice the table's row contradicts
Contradiction = Callable[[str, str], None]


@dataclass(frozen=True)
class Built:
    """A loss, optimizer or schedule to construct: its Keras class and every parameter."""

    name: str
    keras_class: str
    params: dict[str, Any]
    error_power: int = 0  # regression losses: the power of label units they are in

    def as_yaml(self) -> str | dict[str, Any]:
        return {"name": self.name, **self.params} if self.params else self.name


@dataclass(frozen=True)
class LossStage:
    weights: tuple[float, ...]  # one per LossPlan.terms: the blend in force during the stage
    until_epoch: int | None  # its last epoch (1-based); None: to the end


@dataclass(frozen=True)
class LossPlan:
    """A head's loss: the distinct losses it uses (`terms`) and, per stage, how they mix. A plain
    loss is one stage of one term; a blend one stage of several; a schedule several stages."""

    terms: tuple[Built, ...]
    stages: tuple[LossStage, ...]
    form: str  # single | blend | schedule: how the spec wrote it

    @property
    def single(self) -> Built | None:
        return self.terms[0] if self.form == "single" else None

    def stage_at(self, epoch: int) -> int:
        """The stage in force in `epoch` (0-based, as Keras counts)."""
        for i, stage in enumerate(self.stages):
            if stage.until_epoch is None or epoch < stage.until_epoch:
                return i
        return len(self.stages) - 1

    def describe(self, stage: int = 0) -> str:
        """`huber(delta=1.0)`, or `0.7*mse + 0.3*mae`: the loss in force, for history.csv."""
        weights = self.stages[stage].weights
        used = [(w, t) for w, t in zip(weights, self.terms, strict=True) if w]
        if len(used) == 1 and used[0][0] == 1:
            return used[0][1].name
        return " + ".join(f"{w:g}*{t.name}" for w, t in used)

    def as_yaml(self) -> Any:
        def stage_yaml(stage: LossStage) -> dict[str, Any]:
            used = [(w, t) for w, t in zip(stage.weights, self.terms, strict=True) if w]
            if len(used) == 1 and self.form == "schedule":
                item: dict[str, Any] = {"loss": used[0][1].name, **used[0][1].params}
            else:
                item = {"blend": [{"loss": t.name, "weight": w, **t.params} for w, t in used]}
            return item | ({"until_epoch": stage.until_epoch} if stage.until_epoch else {})

        if self.form == "single":
            return self.terms[0].as_yaml()
        if self.form == "blend":
            return stage_yaml(self.stages[0])
        return {"schedule": [stage_yaml(stage) for stage in self.stages]}

    @property
    def summary(self) -> str:
        if self.form != "schedule":
            return self.describe(0)
        parts, start = [], 1
        for i, stage in enumerate(self.stages):
            end = f"-{stage.until_epoch}" if stage.until_epoch else "+"
            parts.append(f"{self.describe(i)} (epochs {start}{end})")
            start = (stage.until_epoch or 0) + 1
        return ", then ".join(parts)


def row_text(recipe: Recipe, label_format: str, classes: int | None = None) -> str:
    """One table row in words: `binary (two values): Dense(1, sigmoid) + binary_crossentropy`."""
    units = recipe.units_for(classes) if classes or recipe.output_units != "classes" else "k"
    act = "" if recipe.output_activation == "linear" else f", {recipe.output_activation}"
    return (
        f"table row {recipe.task} ({recipe.label_formats[label_format]}): "
        f"Dense({units}{act}) + {recipe.recommended_loss[label_format]}"
    )


def loss_plan(
    spec_loss: LossSpec,
    key: str,
    table: Table,
    recipe: Recipe,
    label_format: str,
    contradiction: Contradiction,
) -> tuple[LossPlan, bool]:
    """The head's loss in every form, each term checked against its table row; and whether the
    targets are one-hot encoded (integer labels, for a loss that takes only one-hot rows)."""
    terms: list[Built] = []
    onehot: set[bool] = set()
    stages = []
    for stage in spec_loss.stages:
        weights = [0.0] * len(terms)
        for term in stage.terms:
            where = dotted(term.path) if term.path else f"{key}loss"
            named = _loss(term.choice, table, recipe, label_format, contradiction, where)
            onehot.add(
                label_format == "integer"
                and (named.encodes_integer_labels or "integer" not in named.labels)
                and "onehot" in named.labels
            )
            made = built(named, term.choice)
            if made not in terms:
                terms.append(made)
                weights.append(0.0)
            weights[terms.index(made)] += term.weight
        stages.append((weights, stage.until_epoch))
    if len(onehot) > 1:
        raise SpecError(
            f"{key}loss: mixes losses that take class ids with losses that take one-hot "
            "rows (e.g. sparse_categorical_crossentropy with categorical_focal_crossentropy); "
            "use losses of one kind, e.g. categorical_crossentropy with "
            "categorical_focal_crossentropy"
        )
    width = len(terms)
    plan_stages = tuple(
        LossStage(tuple(w + [0.0] * (width - len(w))), until) for w, until in stages
    )
    if len(spec_loss.stages) > 1:
        form = "schedule"
    elif len(spec_loss.stages[0].terms) > 1:
        form = "blend"
    else:
        form = "single"
    return LossPlan(tuple(terms), plan_stages, form), onehot.pop()


def _loss(
    choice: Choice,
    table: Table,
    recipe: Recipe,
    label_format: str,
    contradiction: Contradiction,
    where: str = "loss",
) -> Named:
    if choice.name == "auto":
        return recipe.losses[recipe.recommended_loss[label_format]]
    owner = table.loss_owner(choice.name)
    assert owner is not None  # the spec loader checked the name
    loss = owner.losses[choice.name]
    if owner.task != recipe.task:
        contradiction(
            where,
            f"{choice.name} belongs to the {owner.task} row, not {recipe.task}; "
            f"the {row_text(recipe, label_format)}. Use loss: "
            f"{recipe.recommended_loss[label_format]} (or leave it out: auto).",
        )
    elif label_format not in loss.labels:
        fits = next(f for f in loss.labels)
        contradiction(
            where,
            f"{choice.name} needs {recipe.label_formats[fits]}; the label here is "
            f"{recipe.label_formats[label_format]}, so the {row_text(recipe, label_format)}. "
            f"Use loss: {recipe.recommended_loss[label_format]}.",
        )
    return loss


def built(item: Named, choice: Choice, drop: tuple[str, ...] = ()) -> Built:
    """Every parameter filled in: the user's values over the table's (Keras's) defaults.
    `drop` leaves out what something else sets (a schedule sets the learning rate)."""
    params = {**item.defaults(), **choice.params}
    kept = {k: v for k, v in params.items() if k not in drop}
    return Built(item.name, item.keras_class, kept, item.error_power)
