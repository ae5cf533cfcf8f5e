"""Spec + detected labels -> the plan: every choice the table makes, checked for contradictions.

This is the `recipe` step of spec -> data -> recipe -> model -> fit. A contradiction with the table
is an error that cites the row and the fix; with `strict: false` it becomes a warning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taskfit.config.schema import Choice
from taskfit.config.yamlfile import dotted
from taskfit.data.labels import Labels, same_label
from taskfit.errors import DataError, Problems, SpecError
from taskfit.plan.outputs import logged_names, several
from taskfit.recipe.table import Named, Recipe, load_table
from taskfit.spec.lossform import LossSpec
from taskfit.spec.spec import SINGLE_HEAD, LayerSpec, OutputSpec, Spec


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


@dataclass(frozen=True)
class Head:
    """One output: its labels, output layer, loss and metrics. A spec with one task has one head,
    named SINGLE_HEAD; a spec with `heads` has one per entry."""

    name: str
    task: str
    labels: Labels
    layers: tuple[LayerSpec, ...]  # the head's own hidden layers (none for a single task)
    output_units: int
    output_activation: str
    loss: LossPlan
    onehot_targets: bool  # integer labels are one-hot encoded for a loss that needs them
    metrics: tuple[str, ...]
    weight: float = 1.0  # fixed loss weight
    # "balanced", or class index -> weight; None: every class weighs the same (one task only)
    class_weight: str | dict[int, float] | None = None

    @property
    def output_text(self) -> str:
        """`Dense(3, softmax)`: the output layer in words."""
        act = "" if self.output_activation == "linear" else f", {self.output_activation}"
        return f"Dense({self.output_units}{act})"


@dataclass(frozen=True)
class Plan:
    heads: tuple[Head, ...]
    layers: tuple[LayerSpec, ...]  # hidden layers: the body (one task) or the shared trunk
    optimizer: Built
    schedule: Built | None
    weighting: Built  # fixed, uncertainty or dwa
    warnings: tuple[str, ...] = field(default=())
    # the small-table additions (recipes/small_tables.yaml), resolved from the spec and the data
    members: int = 1  # copies of the body, each with its own loss; the model outputs their mean
    periodic: bool = False  # numeric columns go through the periodic embedding
    refit: bool = False  # after early stopping, train afresh on train + validation

    @property
    def additions(self) -> list[str]:
        """The small-table additions in force, in words."""
        return additions_text(self.members, self.periodic, self.refit)

    @property
    def multi(self) -> bool:
        """Several heads (the spec gives `heads`): a model with named outputs."""
        return several(self.heads)

    @property
    def head(self) -> Head:
        """The one head of a single-task plan."""
        if self.multi:
            raise ValueError("this plan has several heads")
        return self.heads[0]

    @property
    def stratify_by(self) -> str | None:
        """The head whose classes the split keeps in proportion: the first classifier."""
        return next((h.name for h in self.heads if h.task != "regression"), None)


def additions_text(members: int, periodic: bool, refit: bool) -> list[str]:
    out = [f"{members} members"] if members > 1 else []
    out += ["periodic numeric embedding"] if periodic else []
    return out + (["refit on train + validation"] if refit else [])


def row_text(recipe: Recipe, label_format: str, classes: int | None = None) -> str:
    """One table row in words: `binary (two values): Dense(1, sigmoid) + binary_crossentropy`."""
    units = recipe.units_for(classes) if classes or recipe.output_units != "classes" else "k"
    act = "" if recipe.output_activation == "linear" else f", {recipe.output_activation}"
    return (
        f"table row {recipe.task} ({recipe.label_formats[label_format]}): "
        f"Dense({units}{act}) + {recipe.recommended_loss[label_format]}"
    )


def _label_problem(task: str, labels: Labels) -> str | None:
    """A label format the task cannot train on at all (strict or not)."""
    table = load_table()
    if task == "binary" and labels.format != "binary":
        k = labels.n_classes
        fix = row_text(table.recipe("multiclass"), "integer", k)
        return (
            f"column {labels.columns[0]} has {k} classes ({labels.describe()}); a binary task "
            f"needs two. Use task: multiclass ({fix})."
        )
    return None


Contradiction = Callable[[str, str], None]


@dataclass(frozen=True)
class HeadAsked:
    """What the spec asks of one head, wherever it says it (top level or under heads.<name>)."""

    name: str
    task: str
    loss: LossSpec
    metrics: str | tuple[str, ...]
    output: OutputSpec
    layers: tuple[LayerSpec, ...]
    weight: float
    key: str  # "" for a single task, "heads.<name>." for a head: prefixes spec paths in messages


def heads_asked(spec: Spec) -> list[HeadAsked]:
    if spec.heads is None:
        assert spec.task is not None
        return [
            HeadAsked(
                SINGLE_HEAD, spec.task, spec.loss, spec.metrics, spec.model.output, (), 1.0, ""
            )
        ]
    return [
        HeadAsked(
            name,
            head.task,
            head.loss,
            head.metrics,
            OutputSpec(),
            head.layers if head.layers is not None else spec.model.head_layers,
            head.loss_weight,
            f"heads.{name}.",
        )
        for name, head in spec.heads.items()
    ]


def make_plan(spec: Spec, labels: dict[str, Labels], rows: int | None = None) -> Plan:
    """`rows`: the labelled rows of a table fitted in memory by one process, which decides the
    small-table defaults; None (streamed, several processes, a resolved spec) leaves them off."""
    table = load_table()
    asked = heads_asked(spec)
    for head in asked:
        wrong = _label_problem(head.task, labels[head.name])
        if wrong:
            raise DataError(f"{head.key}task: {wrong}" if head.key else wrong)
    problems = Problems()

    def contradiction(where: str, message: str) -> None:
        problems.add(where, message + ("" if spec.strict else " (allowed: strict is false)"))

    heads = tuple(_head(head, labels[head.name], contradiction) for head in asked)
    if spec.heads is None:
        heads = (dataclasses.replace(heads[0], class_weight=_class_weight(spec, heads[0])),)
    _check_monitor(spec, heads)
    warnings = tuple(str(p) for p in problems.items) if not spec.strict else ()
    if spec.strict:
        problems.raise_if_any(SpecError)
    first = table.recipe(asked[0].task)
    plan = Plan(
        heads=heads,
        layers=spec.model.layers
        if spec.model.layers is not None
        else tuple(LayerSpec(**layer) for layer in first.layers),
        optimizer=_built(
            table.optimizers[spec.optimizer.name],
            spec.optimizer,
            drop=("learning_rate",) if spec.schedule else (),
        ),
        schedule=_built(table.schedules[spec.schedule.name], spec.schedule)
        if spec.schedule
        else None,
        weighting=_built(table.weightings[spec.loss_weighting.name], spec.loss_weighting),
        warnings=warnings,
    )
    return _with_additions(plan, spec, rows)


def _with_additions(plan: Plan, spec: Spec, rows: int | None) -> Plan:
    """The small-table additions: what the spec sets, else the table's default for the data.
    One task only: a packed ensemble and the refit would multiply the heads' weighting."""
    small = load_table().small_tables
    default = rows is not None and rows <= small.up_to_rows and not plan.multi
    has_validation = spec.data.validation_fraction > 0
    asked = {
        "model.members": spec.model.members is not None and spec.model.members > 1,
        "model.numeric_embedding": spec.model.numeric_embedding == "periodic",
        "training.refit": bool(spec.training.refit),
    }
    problems = Problems()
    for where, is_set in asked.items():
        if is_set and plan.multi:
            problems.add(where, "works with one task; this spec has heads. Remove it.")
    if spec.training.refit and not has_validation:
        problems.add(
            "training.refit",
            "adds the validation rows to training, but data.validation_fraction is 0. Give a "
            "validation split, or set refit: false.",
        )
    problems.raise_if_any(SpecError)

    def pick(value: Any, small_default: Any, off: Any) -> Any:
        if value is not None:
            return value
        return small_default if default else off

    embedding = pick(spec.model.numeric_embedding, small.numeric_embedding, "none")
    return dataclasses.replace(
        plan,
        members=pick(spec.model.members, small.members, 1),
        periodic=embedding == "periodic",
        refit=pick(spec.training.refit, small.refit and has_validation, False),
    )


def _head(asked: HeadAsked, labels: Labels, contradiction: Contradiction) -> Head:
    """One head's table row, every choice checked against it."""
    table = load_table()
    recipe = table.recipe(asked.task)
    key = asked.key
    label_format = labels.format
    if asked.task == "multiclass" and label_format == "binary":
        contradiction(
            f"{key}task",
            f"the label has two classes ({labels.describe()}); "
            f"two classes take {row_text(table.recipe('binary'), 'binary')}. "
            "Use task: binary, or set strict: false to keep a 2-unit softmax.",
        )
        label_format = "integer"
    table_units = recipe.units_for(labels.n_classes)
    out = asked.output
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
            f"{activation} on a {asked.task} output contradicts the "
            f"{row_text(recipe, label_format)}. "
            f"Use {recipe.output_activation} (or leave it out: auto).",
        )
    loss, onehot = _loss_plan(asked, recipe, label_format, contradiction)
    return Head(
        name=asked.name,
        task=asked.task,
        labels=labels,
        layers=asked.layers,
        output_units=units,
        output_activation=activation,
        loss=loss,
        onehot_targets=onehot,
        metrics=recipe.metrics if asked.metrics == "auto" else tuple(asked.metrics),
        weight=asked.weight,
    )


def _loss_plan(
    asked: HeadAsked, recipe: Recipe, label_format: str, contradiction: Contradiction
) -> tuple[LossPlan, bool]:
    """The head's loss in every form, each term checked against its table row; and whether the
    targets are one-hot encoded (integer labels, for a loss that takes only one-hot rows)."""
    spec_loss = asked.loss
    terms: list[Built] = []
    onehot: set[bool] = set()
    stages = []
    for stage in spec_loss.stages:
        weights = [0.0] * len(terms)
        for term in stage.terms:
            where = dotted(term.path) if term.path else f"{asked.key}loss"
            named = _loss(term.choice, recipe, label_format, contradiction, where)
            onehot.add(
                label_format == "integer"
                and (named.encodes_integer_labels or "integer" not in named.labels)
                and "onehot" in named.labels
            )
            built = _built(named, term.choice)
            if built not in terms:
                terms.append(built)
                weights.append(0.0)
            weights[terms.index(built)] += term.weight
        stages.append((weights, stage.until_epoch))
    if len(onehot) > 1:
        raise SpecError(
            f"{asked.key}loss: mixes losses that take class ids with losses that take one-hot "
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


def _class_weight(spec: Spec, head: Head) -> str | dict[int, float] | None:
    """training.class_weight by class name -> by output index, every name checked."""
    weights = spec.training.class_weight
    if weights is None:
        return None
    if head.task == "regression":
        raise SpecError(
            "training.class_weight: weighs classes; a regression task has none. Remove it."
        )
    if isinstance(weights, str):
        return weights
    classes = head.labels.classes
    by_index: dict[int, float] = {}
    for name, weight in weights.items():
        if weight < 0:  # a negative weight would reward the mistakes on that class
            raise SpecError(
                f"training.class_weight: the weight of {name!r} must be a number >= 0. "
                f"Got {weight:g} instead."
            )
        match = [i for i, c in enumerate(classes) if same_label(name, c)]
        if not match:
            raise SpecError(
                f"training.class_weight: {name!r} is not a class. Classes: {', '.join(classes)}"
            )
        by_index[match[0]] = weight
    return {i: by_index.get(i, 1.0) for i in range(len(classes))}


def _check_monitor(spec: Spec, heads: tuple[Head, ...]) -> None:
    """Early stopping must watch something the run logs (errors even with strict: false)."""
    stopping = spec.training.early_stopping
    if stopping is None:
        return
    logged = logged_names(heads)
    if spec.data.validation_fraction > 0:
        logged += [f"val_{name}" for name in logged]
    if stopping.monitor not in logged:
        why = "" if spec.data.validation_fraction > 0 else " (data.validation_fraction is 0)"
        raise SpecError(
            f"training.early_stopping.monitor: {stopping.monitor!r} is not logged{why}. "
            f"Logged: {', '.join(logged)}; or set training.early_stopping: null"
        )


def _loss(
    choice: Choice,
    recipe: Recipe,
    label_format: str,
    contradiction: Contradiction,
    where: str = "loss",
) -> Named:
    table = load_table()
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


def _built(item: Named, choice: Choice, drop: tuple[str, ...] = ()) -> Built:
    """Every parameter filled in: the user's values over the table's (Keras's) defaults.
    `drop` leaves out what something else sets (a schedule sets the learning rate)."""
    params = {**item.defaults(), **choice.params}
    kept = {k: v for k, v in params.items() if k not in drop}
    return Built(item.name, item.keras_class, kept, item.error_power)


def plan_summary(plan: Plan) -> str:
    """The table's choices in one comment block, for spec.resolved.yaml and `check`."""
    optimizer = f"optimizer: {plan.optimizer.name}" + (
        f" with {plan.schedule.name}" if plan.schedule else ""
    )
    if not plan.multi:
        head = plan.head
        added = f"\nadditions: {', '.join(plan.additions)}" if plan.additions else ""
        return (
            f"labels: {head.labels.describe()} ({head.labels.format})\n"
            f"output: {head.output_text}; loss: {head.loss.summary}; "
            f"metrics: {', '.join(head.metrics)}; {optimizer}{added}"
        )
    lines = [
        f"{h.name}: {h.task}, {h.labels.describe()} ({h.labels.format}); output: "
        f"{h.output_text}; loss: {h.loss.summary}; metrics: {', '.join(h.metrics)}"
        for h in plan.heads
    ]
    return "\n".join([*lines, f"loss weighting: {plan.weighting.name}; {optimizer}"])
