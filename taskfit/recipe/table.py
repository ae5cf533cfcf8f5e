"""The recommendation table: reads recipes/*.yaml (at the repository root, packaged into the
wheel), the one place the advice lives.

`recommend`, `check`, `train` and the docs all read it through `load_table()`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from taskfit.config.params import Param
from taskfit.config.yamlfile import load_data

TASKS = ("binary", "multiclass", "regression")
# Metrics where more is better; every other logged quantity (loss, mae, mse, ...) is an error.
HIGHER_IS_BETTER = ("accuracy", "auc", "precision", "recall", "r2_score")


def higher_is_better(metric: str) -> bool:
    """`accuracy`, `val_auc`, `diagnosis_recall`: more is better; a head's `_weight` is neither,
    and is never ranked."""
    return metric.endswith(HIGHER_IS_BETTER) and not metric.endswith("_weight")


@dataclass(frozen=True)
class Named:
    """A loss, optimizer, schedule, weighting, sharing or numeric embedding: its class (Keras's,
    or taskfit's name for what it builds), when to pick it, and its parameters."""

    name: str
    keras_class: str
    when: str
    params: dict[str, Param]
    labels: tuple[str, ...] = ()  # losses only: the label formats it accepts
    encodes_integer_labels: bool = False  # losses only: needs one-hot targets, taskfit encodes them
    example: dict[str, Any] | None = None  # schedules only: settings an error message suggests
    # regression losses only: the power of label units the loss is in (mse 2, mae 1)
    error_power: int = 0
    fixed_weights: bool = False  # loss weightings only: each head keeps its loss_weight

    def defaults(self) -> dict[str, Any]:
        return {k: p.default for k, p in self.params.items() if not p.required}


# the scales a regression label can be learned on, each named as its function in math, NumPy
# and keras.ops (taskfit.data.targets)
TARGET_TRANSFORMS = ("log", "log1p")


@dataclass(frozen=True)
class TargetRule:
    """When `data.target_transform: auto` learns a regression label on another scale
    (recipes/regression.yaml; taskfit.data.targets applies it)."""

    skewness_above: float
    order: tuple[str, ...]  # the first transform whose domain holds every label and that
    # makes the labels less skewed wins


@dataclass(frozen=True)
class Recipe:
    """One row of the table: a task's output layer, losses, metrics and starting architecture."""

    task: str
    summary: str
    label_formats: dict[str, str]  # format -> how the labels look
    recommended_loss: dict[str, str]  # format -> loss name
    output_units: int | str  # an int, or "classes" for one unit per class
    output_activation: str
    output_why: str
    losses: dict[str, Named]
    metrics: tuple[str, ...]
    metric_choices: tuple[str, ...]
    layers: tuple[dict[str, Any], ...]
    optimizer: str
    target_rule: TargetRule | None = None  # regression only

    def units_for(self, n_classes: int | None) -> int:
        if self.output_units == "classes":
            if n_classes is None:
                raise ValueError("the number of classes is needed for a softmax output")
            return n_classes
        return int(self.output_units)

    def losses_for(self, label_format: str) -> dict[str, Named]:
        return {n: loss for n, loss in self.losses.items() if label_format in loss.labels}


@dataclass(frozen=True)
class Tuning:
    """`taskfit tune`'s search space (recipes/tuning.yaml)."""

    optimizers: dict[str, dict[str, Any]]  # name -> the parameters the advice fixes
    learning_rate_factor: tuple[float, float]  # log-uniform, times the optimizer's default
    schedules: dict[str, dict[str, Any] | None]  # name -> parameters ("epoch", "run": lengths)
    width: tuple[float, ...]
    dropout: tuple[float, ...]


@dataclass(frozen=True)
class SmallTables:
    """What a small in-memory table gets by default (recipes/small_tables.yaml)."""

    up_to_rows: int
    members: int
    ensemble: str  # packed or tabm_mini
    layers: tuple[dict[str, Any], ...]  # hidden layers when the spec gives none
    numeric_embedding: str  # one of `embeddings`
    numeric_clipping: dict[str, str]  # task -> one of `clippings`
    refit: bool
    bagging: bool  # each member held out of its own fold of train + validation
    embeddings: dict[str, Named]  # how a numeric column reaches the network
    clippings: dict[str, Named]  # how standardised numeric inputs are bounded


@dataclass(frozen=True)
class Batching:
    """The default batch size by the table's size, and how the learning rate follows it
    (recipes/training.yaml)."""

    steps_per_epoch: int
    smallest: int
    largest: int
    rows_unknown: int
    learning_rate_scaling: str  # sqrt or none
    scaled_optimizers: tuple[str, ...]  # the adaptive ones, which the square-root rule is for

    def batch_size(self, train_rows: int | None) -> int:
        """train_rows / steps_per_epoch rounded down to a power of two, within the bounds."""
        if train_rows is None:
            return self.rows_unknown
        target = max(train_rows // self.steps_per_epoch, 1)
        return min(max(1 << (target.bit_length() - 1), self.smallest), self.largest)

    def rate_factor(self, optimizer: str, batch_size: int) -> float:
        """What the optimizer's default learning rate is multiplied by at this batch size."""
        if self.learning_rate_scaling == "none" or optimizer not in self.scaled_optimizers:
            return 1.0
        return float(max(batch_size / self.smallest, 1.0) ** 0.5)


@dataclass(frozen=True)
class Fitting:
    """How a fit runs when the spec does not say (recipes/training.yaml)."""

    batching: Batching
    steps_per_execution: int
    evaluation_batch: int


@dataclass(frozen=True)
class Table:
    recipes: dict[str, Recipe]
    optimizers: dict[str, Named]
    optimizer_common: dict[str, Param]
    default_optimizer: str
    optimizer_advice: str
    schedules: dict[str, Named]
    activations: tuple[str, ...]
    weightings: dict[str, Named]  # how several heads' losses make one total
    sharings: dict[str, Named]  # how several heads share the hidden layers (model.sharing)
    tuning: Tuning
    small_tables: SmallTables
    fitting: Fitting

    def recipe(self, task: str) -> Recipe:
        return self.recipes[task]

    def loss_owner(self, loss: str) -> Recipe | None:
        """The row a loss belongs to, to explain a loss used on the wrong task."""
        return next((r for r in self.recipes.values() if loss in r.losses), None)

    def all_losses(self) -> dict[str, Named]:
        return {n: loss for r in self.recipes.values() for n, loss in r.losses.items()}

    def catalog(self, kind: str) -> dict[str, Named]:
        """The choices of one kind, as a spec key names them (`names="sharings"` in
        taskfit.spec.keys): what the spec's checks and its JSON Schema both read."""
        return {
            "losses": self.all_losses(),
            "optimizers": self.optimizers,
            "schedules": self.schedules,
            "weightings": self.weightings,
            "sharings": self.sharings,
            "embeddings": self.small_tables.embeddings,
            "clippings": self.small_tables.clippings,
        }[kind]


def recipes_folder() -> Traversable:
    """The table's YAML files: inside an installed wheel (pyproject's force-include puts the
    repository's recipes/ there), else the repository's own recipes/ (a source checkout or an
    editable install, which runs the package from the repository)."""
    packaged = resources.files("taskfit").joinpath("recipes")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "recipes"


def _read(name: str) -> dict[str, Any]:
    text = recipes_folder().joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = load_data(text)
    return data


def _named(name: str, row: dict[str, Any]) -> Named:
    return Named(
        name=name,
        keras_class=row["class"],
        when=row["when"],
        params={k: Param.from_table(v) for k, v in (row.get("params") or {}).items()},
        labels=tuple(row.get("labels", ())),
        encodes_integer_labels=bool(row.get("encodes_integer_labels", False)),
        example=row.get("example"),
        error_power=int(row.get("error_power", 0)),
        fixed_weights=bool(row.get("fixed_weights", False)),
    )


def _recipe(row: dict[str, Any]) -> Recipe:
    return Recipe(
        task=row["task"],
        summary=row["summary"],
        label_formats={k: v["describe"] for k, v in row["labels"].items()},
        recommended_loss={k: v["loss"] for k, v in row["labels"].items()},
        output_units=row["output"]["units"],
        output_activation=row["output"]["activation"],
        output_why=row["output"]["why"],
        losses={n: _named(n, v) for n, v in row["losses"].items()},
        metrics=tuple(row["metrics"]),
        metric_choices=tuple(row["metric_choices"]),
        layers=tuple(row["layers"]),
        optimizer=row["optimizer"],
        target_rule=_target_rule(row["target_transform"]) if "target_transform" in row else None,
    )


def _target_rule(row: dict[str, Any]) -> TargetRule:
    return TargetRule(float(row["skewness_above"]), tuple(row["order"]))


@functools.cache
def load_table() -> Table:
    optimizers = _read("optimizers.yaml")
    return Table(
        recipes={task: _recipe(_read(f"{task}.yaml")) for task in TASKS},
        optimizers={n: _named(n, v) for n, v in optimizers["optimizers"].items()},
        optimizer_common={k: Param.from_table(v) for k, v in optimizers["common"].items()},
        default_optimizer=optimizers["default"],
        optimizer_advice=optimizers["advice"],
        schedules={n: _named(n, v) for n, v in _read("schedules.yaml")["schedules"].items()},
        activations=tuple(_read("layers.yaml")["activations"]),
        weightings={n: _named(n, v) for n, v in _read("weighting.yaml")["weightings"].items()},
        sharings={n: _named(n, v) for n, v in _read("sharing.yaml")["sharings"].items()},
        tuning=_tuning(_read("tuning.yaml")),
        small_tables=_small_tables(_read("small_tables.yaml")),
        fitting=_fitting(_read("training.yaml")),
    )


def _fitting(row: dict[str, Any]) -> Fitting:
    batch = row["batch_size"]
    scaling = str(batch["learning_rate_scaling"])
    if scaling not in ("sqrt", "none"):
        raise ValueError(f"training.yaml: learning_rate_scaling is sqrt or none, not {scaling}")
    return Fitting(
        Batching(
            int(batch["steps_per_epoch"]),
            int(batch["smallest"]),
            int(batch["largest"]),
            int(batch["rows_unknown"]),
            scaling,
            tuple(batch["scaled_optimizers"]),
        ),
        int(row["steps_per_execution"]),
        int(row["evaluation_batch"]),
    )


def _small_tables(row: dict[str, Any]) -> SmallTables:
    return SmallTables(
        up_to_rows=int(row["up_to_rows"]),
        members=int(row["members"]),
        ensemble=str(row["ensemble"]),
        layers=tuple(row["layers"]),
        numeric_embedding=str(row["numeric_embedding"]),
        numeric_clipping={task: str(row["numeric_clipping"][task]) for task in TASKS},
        refit=bool(row["refit"]),
        bagging=bool(row["bagging"]),
        embeddings={n: _named(n, v) for n, v in row["embeddings"].items()},
        clippings={n: _named(n, v) for n, v in row["clippings"].items()},
    )


def _tuning(row: dict[str, Any]) -> Tuning:
    factor = row["learning_rate_factor"]
    return Tuning(
        optimizers={n: dict(v or {}) for n, v in row["optimizers"].items()},
        learning_rate_factor=(float(factor["min"]), float(factor["max"])),
        schedules=dict(row["schedules"]),
        width=tuple(float(w) for w in row["width"]),
        dropout=tuple(float(d) for d in row["dropout"]),
    )


def recommendation(task: str, label_format: str | None = None) -> dict[str, Any]:
    """The table row for a task (and label format) as plain data: what `recommend` prints."""
    from taskfit.config.params import show
    from taskfit.errors import Problem, SpecError

    table = load_table()
    if not isinstance(task, str) or task not in table.recipes:
        tasks = ", ".join(table.recipes)
        raise SpecError([Problem("task", f"must be one of {tasks}. Got {show(task)} instead.")])
    recipe = table.recipe(task)
    formats = list(recipe.label_formats)
    label_format = label_format or formats[0]
    if not isinstance(label_format, str) or label_format not in recipe.label_formats:
        expected = f"{task} labels are {' or '.join(formats)}"
        raise SpecError([Problem("labels", f"{expected}. Got {show(label_format)} instead.")])
    loss = recipe.recommended_loss[label_format]
    units = "number of classes" if recipe.output_units == "classes" else recipe.output_units
    return {
        "task": task,
        "summary": recipe.summary,
        "labels": {"format": label_format, "looks_like": recipe.label_formats[label_format]},
        "output_layer": {
            "units": units,
            "activation": recipe.output_activation,
            "why": recipe.output_why,
        },
        "loss": loss,
        "losses": {
            name: {
                "when": item.when,
                **(
                    {"params": {k: p.default for k, p in item.params.items()}}
                    if item.params
                    else {}
                ),
            }
            for name, item in recipe.losses_for(label_format).items()
        },
        "metrics": list(recipe.metrics),
        "more_metrics": [m for m in recipe.metric_choices if m not in recipe.metrics],
        "hidden_layers": [dict(layer) for layer in recipe.layers],
        "optimizer": recipe.optimizer,
        "optimizers": {name: item.when for name, item in table.optimizers.items()},
        "optimizer_advice": table.optimizer_advice,
        "loss_weightings": {name: item.when for name, item in table.weightings.items()},
        "sharings": {name: item.when for name, item in table.sharings.items()},
    }
