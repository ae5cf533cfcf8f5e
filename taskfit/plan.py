"""Spec + detected labels -> the plan: every choice the table makes, checked for contradictions.

This is the `recipe` step of spec -> data -> recipe -> model -> fit. A contradiction with the table
is an error that cites the row and the fix; with `strict: false` it becomes a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taskfit.errors import DataError, Problems, SpecError
from taskfit.labels import Labels, same_label
from taskfit.schema import Choice
from taskfit.spec import LayerSpec, Spec
from taskfit.table import Named, Recipe, load_table


@dataclass(frozen=True)
class Built:
    """A loss, optimizer or schedule to construct: its Keras class and every parameter."""

    name: str
    keras_class: str
    params: dict[str, Any]

    def as_yaml(self) -> str | dict[str, Any]:
        return {"name": self.name, **self.params} if self.params else self.name


@dataclass(frozen=True)
class Plan:
    task: str
    labels: Labels
    layers: tuple[LayerSpec, ...]
    output_units: int
    output_activation: str
    loss: Built
    onehot_targets: bool  # integer labels are one-hot encoded for a loss that needs them
    metrics: tuple[str, ...]
    optimizer: Built
    schedule: Built | None
    warnings: tuple[str, ...] = field(default=())
    # "balanced", or class index -> weight; None: every class weighs the same
    class_weight: str | dict[int, float] | None = None


def row_text(recipe: Recipe, label_format: str, classes: int | None = None) -> str:
    """One table row in words: `binary (two values): Dense(1, sigmoid) + binary_crossentropy`."""
    units = recipe.units_for(classes) if classes or recipe.output_units != "classes" else "k"
    act = "" if recipe.output_activation == "linear" else f", {recipe.output_activation}"
    return (
        f"table row {recipe.task} ({recipe.label_formats[label_format]}): "
        f"Dense({units}{act}) + {recipe.recommended_loss[label_format]}"
    )


def _label_problem(spec: Spec, labels: Labels) -> str | None:
    """A label format the task cannot train on at all (strict or not)."""
    table = load_table()
    if spec.task == "binary" and labels.format != "binary":
        k = labels.n_classes
        fix = row_text(table.recipe("multiclass"), "integer", k)
        return (
            f"column {labels.columns[0]} has {k} classes ({labels.describe()}); a binary task "
            f"needs two. Use task: multiclass ({fix})."
        )
    return None


def make_plan(spec: Spec, labels: Labels) -> Plan:
    table = load_table()
    recipe = table.recipe(spec.task)
    wrong = _label_problem(spec, labels)
    if wrong:
        raise DataError(wrong)
    problems = Problems()

    def contradiction(where: str, message: str) -> None:
        problems.add(where, message + ("" if spec.strict else " (allowed: strict is false)"))

    label_format = labels.format
    if spec.task == "multiclass" and label_format == "binary":
        contradiction(
            "task",
            f"the label has two classes ({labels.describe()}); "
            f"two classes take {row_text(table.recipe('binary'), 'binary')}. "
            "Use task: binary, or set strict: false to keep a 2-unit softmax.",
        )
        label_format = "integer"
    table_units = recipe.units_for(labels.n_classes)
    out = spec.model.output
    units = table_units if out.units == "auto" else int(out.units)
    activation = recipe.output_activation if out.activation == "auto" else out.activation
    if activation == "softmax" and units == 1:
        contradiction(
            "model.output",
            "softmax with one unit always outputs 1.0, so nothing is learned. "
            f"Use {row_text(table.recipe('binary'), 'binary')}.",
        )
    elif units != table_units:
        contradiction(
            "model.output.units",
            f"is {units}, but the {row_text(recipe, label_format)} "
            f"gives {table_units} here. Remove model.output.units (auto).",
        )
    if activation != recipe.output_activation:
        contradiction(
            "model.output.activation",
            f"{activation} on a {spec.task} output contradicts the "
            f"{row_text(recipe, label_format)}. "
            f"Use {recipe.output_activation} (or leave it out: auto).",
        )
    loss = _loss(spec.loss, recipe, label_format, contradiction)
    # Integer labels are one-hot encoded for a loss that takes only one-hot targets (focal, or
    # categorical_crossentropy under strict: false).
    onehot = (
        label_format == "integer"
        and (loss.encodes_integer_labels or "integer" not in loss.labels)
        and "onehot" in loss.labels
    )
    metrics = recipe.metrics if spec.metrics == "auto" else tuple(spec.metrics)
    _check_monitor(spec, metrics)
    class_weight = _class_weight(spec, labels)
    warnings = tuple(str(p) for p in problems.items) if not spec.strict else ()
    if spec.strict:
        problems.raise_if_any(SpecError)
    return Plan(
        task=spec.task,
        labels=labels,
        layers=spec.model.layers
        if spec.model.layers is not None
        else tuple(LayerSpec(**layer) for layer in recipe.layers),
        output_units=units,
        output_activation=activation,
        loss=_built(loss, spec.loss),
        onehot_targets=onehot,
        metrics=metrics,
        optimizer=_built(
            table.optimizers[spec.optimizer.name],
            spec.optimizer,
            drop=("learning_rate",) if spec.schedule else (),
        ),
        schedule=_built(table.schedules[spec.schedule.name], spec.schedule)
        if spec.schedule
        else None,
        warnings=warnings,
        class_weight=class_weight,
    )


def _class_weight(spec: Spec, labels: Labels) -> str | dict[int, float] | None:
    """training.class_weight by class name -> by output index, every name checked."""
    weights = spec.training.class_weight
    if weights is None:
        return None
    if spec.task == "regression":
        raise SpecError(
            "training.class_weight: weighs classes; a regression task has none. Remove it."
        )
    if isinstance(weights, str):
        return weights
    by_index: dict[int, float] = {}
    for name, weight in weights.items():
        match = [i for i, c in enumerate(labels.classes) if same_label(name, c)]
        if not match:
            raise SpecError(
                f"training.class_weight: {name!r} is not a class. Classes: "
                f"{', '.join(labels.classes)}"
            )
        by_index[match[0]] = weight
    return {i: by_index.get(i, 1.0) for i in range(len(labels.classes))}


def _check_monitor(spec: Spec, metrics: tuple[str, ...]) -> None:
    """Early stopping must watch something the run logs (errors even with strict: false)."""
    stopping = spec.training.early_stopping
    if stopping is None:
        return
    logged = ["loss", *metrics]
    if spec.data.validation_fraction > 0:
        logged += [f"val_{name}" for name in logged]
    if stopping.monitor not in logged:
        why = "" if spec.data.validation_fraction > 0 else " (data.validation_fraction is 0)"
        raise SpecError(
            f"training.early_stopping.monitor: {stopping.monitor!r} is not logged{why}. "
            f"Logged: {', '.join(logged)}; or set training.early_stopping: null"
        )


def _loss(
    choice: Choice, recipe: Recipe, label_format: str, contradiction: Callable[[str, str], None]
) -> Named:
    table = load_table()
    if choice.name == "auto":
        return recipe.losses[recipe.recommended_loss[label_format]]
    owner = table.loss_owner(choice.name)
    assert owner is not None  # the spec loader checked the name
    loss = owner.losses[choice.name]
    if owner.task != recipe.task:
        contradiction(
            "loss",
            f"{choice.name} belongs to the {owner.task} row, not {recipe.task}; "
            f"the {row_text(recipe, label_format)}. Use loss: "
            f"{recipe.recommended_loss[label_format]} (or leave it out: auto).",
        )
    elif label_format not in loss.labels:
        fits = next(f for f in loss.labels)
        contradiction(
            "loss",
            f"{choice.name} needs {recipe.label_formats[fits]}; the label here is "
            f"{recipe.label_formats[label_format]}, so the {row_text(recipe, label_format)}. "
            f"Use loss: {recipe.recommended_loss[label_format]}.",
        )
    return loss


def _built(item: Named, choice: Choice, drop: tuple[str, ...] = ()) -> Built:
    """Every parameter filled in: the user's values over the table's (Keras's) defaults.
    `drop` leaves out what something else sets (a schedule sets the learning rate)."""
    params = {**item.defaults(), **choice.params}
    return Built(item.name, item.keras_class, {k: v for k, v in params.items() if k not in drop})


def plan_summary(plan: Plan) -> str:
    """The table's choices in one comment block, for spec.resolved.yaml and `check`."""
    act = "" if plan.output_activation == "linear" else f", {plan.output_activation}"
    return (
        f"labels: {plan.labels.describe()} ({plan.labels.format})\n"
        f"output: Dense({plan.output_units}{act}); loss: {plan.loss.name}; "
        f"metrics: {', '.join(plan.metrics)}; optimizer: {plan.optimizer.name}"
        + (f" with {plan.schedule.name}" if plan.schedule else "")
    )
