"""Spec + detected labels -> the plan: every choice the table makes, checked for contradictions.

This is the `recipe` step of spec -> data -> recipe -> model -> fit. A contradiction with the table
is an error that cites the row and the fix; with `strict: false` it becomes a warning.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from taskfit.config.schema import Choice
from taskfit.data.labels import Labels, same_label
from taskfit.data.targets import DOMAIN, choose, in_domain
from taskfit.errors import DataError, Problems, SpecError
from taskfit.plan.choices import Contradiction, LossPlan, built, loss_plan, row_text
from taskfit.plan.outputs import logged_names
from taskfit.plan.plan import Head, Plan
from taskfit.recipe.table import TargetRule, load_table
from taskfit.spec.keys import SINGLE_HEAD, TEST_FRACTION, LayerSpec, OutputSpec, Spec
from taskfit.spec.lossform import LossSpec


def _check_computable(head: Head, asked: HeadAsked) -> None:
    """What strict: false may keep against the table, Keras must still compute: the output
    as wide as the loss's target on these labels."""
    needed = _units_the_loss_needs(head.loss, head.labels)
    if head.output_units == needed:
        return
    where = "model.output.units" if asked.output.units != "auto" else f"{asked.key}loss"
    raise SpecError(
        f"{where}: {head.loss.terms[0].name} on these labels ({head.labels.describe()}) "
        f"computes against {needed} output unit{'s' * (needed > 1)}, and the output has "
        f"{head.output_units}; Keras cannot train that, strict or not. Leave "
        "model.output.units and loss out (auto) for the table's choice"
    )


def _units_the_loss_needs(loss: LossPlan, labels: Labels) -> int:
    """The output units a head's loss computes against on its labels: one per class for a
    loss of the multiclass row (class ids or one-hot rows) or for one-hot labels, else one."""
    owner = load_table().loss_owner(loss.terms[0].name)
    per_class = labels.format == "onehot" or (owner is not None and owner.task == "multiclass")
    return len(labels.classes) if per_class else 1


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
    target_transform: str = "auto"
    threshold: float | str | None = None


def heads_asked(spec: Spec) -> list[HeadAsked]:
    if spec.heads is None:
        assert spec.task is not None
        return [
            HeadAsked(
                SINGLE_HEAD,
                spec.task,
                spec.loss,
                spec.metrics,
                spec.model.output,
                (),
                1.0,
                "",
                spec.data.target_transform,
                spec.data.threshold,
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
            head.target_transform,
            head.threshold,
        )
        for name, head in spec.heads.items()
    ]


def make_plan(
    spec: Spec, labels: dict[str, Labels], rows: int | None = None, one_process: bool = True
) -> Plan:
    """`rows`: the labelled rows of a table held in memory (None: streamed, or a resolved spec),
    which decide the default batch size and, for a table `one_process` fits, the small-table
    defaults."""
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
    for made, said in zip(heads, asked, strict=True):
        _check_computable(made, said)
    first = table.recipe(asked[0].task)
    plan = Plan(
        heads=heads,
        layers=spec.model.layers if spec.model.layers is not None else _layer_specs(first.layers),
        optimizer=built(
            table.optimizers[spec.optimizer.name],
            spec.optimizer,
            drop=("learning_rate",) if spec.schedule else (),
        ),
        schedule=built(table.schedules[spec.schedule.name], spec.schedule)
        if spec.schedule
        else None,
        weighting=built(table.weightings[spec.loss_weighting.name], spec.loss_weighting),
        sharing=built(table.sharings[spec.model.sharing.name], spec.model.sharing),
        warnings=warnings,
    )
    _check_sharing(plan)
    plan = _with_additions(plan, spec, rows if one_process else None)
    given = spec.data.test_fraction
    test_fraction = given if given is not None else 0.0 if plan.bagging else TEST_FRACTION
    plan = dataclasses.replace(plan, test_fraction=test_fraction)
    return _with_batch_size(plan, spec, rows)


def _layer_specs(rows: tuple[dict[str, Any], ...]) -> tuple[LayerSpec, ...]:
    """A recipe's hidden layers (a task row's or the small tables') as the spec writes them."""
    return tuple(LayerSpec(**layer) for layer in rows)


def _check_sharing(plan: Plan) -> None:
    """Towers and experts are made of `model.layers`: with none there is nothing to share
    softly or to mix."""
    problems = Problems()
    if plan.sharing.name != "hard" and not plan.layers:
        problems.add(
            "model.sharing",
            f"{plan.sharing.name} builds each tower or expert of model.layers, which is empty. "
            "Give model.layers, or use sharing: hard.",
        )
    problems.raise_if_any(SpecError)


def _with_batch_size(plan: Plan, spec: Spec, rows: int | None) -> Plan:
    """training.batch_size, else the table's rule for the training rows (recipes/training.yaml),
    with the optimizer's default learning rate scaled to it (a rate the spec gives stays)."""
    if spec.training.batch_size is not None:
        return dataclasses.replace(plan, batch_size=spec.training.batch_size)
    batching = load_table().fitting.batching
    train_rows = None
    if rows is not None:  # a member's share, when bagged, of its folds
        held_out = 1 / plan.members if plan.bagging else spec.data.validation_fraction
        train_rows = int(rows * (1 - plan.test_fraction) * (1 - held_out))
    batch_size = batching.batch_size(train_rows)
    optimizer = plan.optimizer
    factor = batching.rate_factor(optimizer.name, batch_size)
    rate = optimizer.params.get("learning_rate")
    if factor != 1 and rate is not None and "learning_rate" not in spec.optimizer.params:
        params = {**optimizer.params, "learning_rate": float(f"{rate * factor:.3g}")}
        optimizer = dataclasses.replace(optimizer, params=params)
    return dataclasses.replace(plan, batch_size=batch_size, optimizer=optimizer)


def _with_additions(plan: Plan, spec: Spec, rows: int | None) -> Plan:
    """The small-table additions: what the spec sets, else the table's default for the data.
    One task only: a packed ensemble and the refit would multiply the heads' weighting."""
    small = load_table().small_tables
    default = rows is not None and rows <= small.up_to_rows and not plan.multi
    has_validation = spec.data.validation_fraction > 0
    asked = {
        "model.members": spec.model.members is not None and spec.model.members > 1,
        "model.ensemble": spec.model.ensemble == "tabm_mini",
        "model.numeric_embedding": spec.model.numeric_embedding not in (None, Choice("none")),
        "training.refit": bool(spec.training.refit),
        "training.bagging": bool(spec.training.bagging),
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

    def pick(value: Any, small_default: Any, off: Any) -> Any:
        if value is not None:
            return value
        return small_default if default else off

    members = pick(spec.model.members, small.members, 1)
    if spec.training.bagging and not plan.multi and members < 2:
        problems.add(
            "training.bagging",
            "holds each member out of its own fold, so it needs model.members of 2 or more. "
            "Give members, or set bagging: false.",
        )
    if spec.training.bagging and spec.training.refit:
        problems.add(
            "training.bagging",
            "trains every member on the validation rows already; training.refit would fit "
            "them again. Set one of them to false.",
        )
    problems.raise_if_any(SpecError)

    embedding = pick(spec.model.numeric_embedding, Choice(small.numeric_embedding), Choice("none"))
    clipping = pick(
        spec.model.numeric_clipping,
        Choice(small.numeric_clipping[plan.heads[0].task]),
        Choice("none"),
    )
    refit = pick(spec.training.refit, small.refit and has_validation, False)
    bagged = small.bagging and has_validation and members > 1 and not refit
    layers = plan.layers  # the spec's, else the task row's
    if spec.model.layers is None and default:
        layers = _layer_specs(small.layers)
    return dataclasses.replace(
        plan,
        layers=layers,
        members=members,
        ensemble=spec.model.ensemble or small.ensemble,
        embedding=built(small.embeddings[embedding.name], embedding),
        clipping=built(small.clippings[clipping.name], clipping),
        refit=refit,
        bagging=pick(spec.training.bagging, bagged, False),
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
    loss, onehot = loss_plan(asked.loss, asked.key, table, recipe, label_format, contradiction)
    transform, reason = _target_transform(asked, labels, recipe.target_rule)
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
        target_transform=transform,
        target_reason=reason,
        threshold=asked.threshold,
    )


def _target_transform(asked: HeadAsked, labels: Labels, rule: TargetRule | None) -> tuple[str, str]:
    """(the scale a regression label is learned on, why): as the spec says, or for `auto` by
    the table's rule on the label's values (a resolved spec has no values, and says it)."""
    where = f"{asked.key or 'data.'}target_transform"
    said = asked.target_transform
    if asked.task != "regression":
        if said not in ("auto", "none"):
            raise SpecError(
                f"{where}: {said} rescales a regression label; this head is {asked.task}. "
                "Remove it."
            )
        return "none", ""
    shape = labels.shape
    if said == "auto":
        if rule is None or shape is None:
            return "none", ""
        return choose(rule, shape)
    if said != "none" and shape is not None and not in_domain(said, shape.smallest):
        raise DataError(
            f"{where}: {said} needs {DOMAIN[said]}; {labels.columns[0]} goes down to "
            f"{shape.smallest:g}. Use "
            + ("log1p, or none." if in_domain("log1p", shape.smallest) else "none.")
        )
    return said, "as the spec says"


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
    full = {i: by_index.get(i, 1.0) for i in range(len(classes))}
    if not any(full.values()):  # every row would weigh nothing: the loss is 0, nothing learns
        raise SpecError(
            "training.class_weight: every class weighs 0, so no row counts and nothing is "
            "learned; give at least one class a weight > 0 (a class left out weighs 1)"
        )
    return full


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
