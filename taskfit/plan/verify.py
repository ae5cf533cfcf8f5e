"""Whether a plan read back from plan.json is one this taskfit can run: every name in it known
to the recommendation table, every parameter of the kind the table gives it, and each head at
one with itself (a binary head has two classes and one or two output units). taskfit writes
plan.json from a checked spec; a plan that fails here was edited or damaged, and Keras would
otherwise stop later with a traceback that does not say so."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskfit.config.params import Param
from taskfit.errors import shown
from taskfit.plan.choices import Built, LossPlan
from taskfit.plan.plan import Head, Plan
from taskfit.recipe.table import TARGET_TRANSFORMS, Named, Table
from taskfit.spec.keys import THRESHOLD_CHOICES, THRESHOLD_RANGE, LayerSpec

ENSEMBLES = ("packed", "tabm_mini")  # model.build: how members hold their weights
LOSS_FORMS = ("single", "blend", "schedule")  # spec.lossform: how the spec wrote a loss
_UNITS, _DROPOUT = Param("int", ge=1), Param("float", ge=0, lt=1)  # LayerSpec's bounds


def plan_problem(plan: Plan, table: Table) -> str:
    """What in `plan` this taskfit cannot run, in words ("gives the binary head output the
    classes ['0', '1', '2']"), or ""."""
    names = [h.name for h in plan.heads]
    if not names:
        return "names no heads"
    if len(set(names)) < len(names):
        return "names a head twice"
    if _UNITS.check(plan.members) or _UNITS.check(plan.batch_size):
        return f"gives {shown(plan.members)} members and batch size {shown(plan.batch_size)}"
    if plan.ensemble not in ENSEMBLES:
        return f"gives the ensemble {plan.ensemble!r} (taskfit's: {', '.join(ENSEMBLES)})"
    found = [
        _layers_problem(plan.layers, table, "the hidden layers"),
        _built_problem(plan.optimizer, table.optimizers, "optimizer", table.optimizer_common),
        _built_problem(plan.schedule, table.schedules, "schedule") if plan.schedule else "",
        _built_problem(plan.weighting, table.weightings, "loss weighting"),
        _built_problem(plan.sharing, table.sharings, "sharing"),
        _built_problem(
            plan.embedding, table.small_tables.embeddings, "numeric embedding", every=True
        ),
        _built_problem(plan.clipping, table.small_tables.clippings, "clipping", every=True),
        *(_head_problem(head, table) for head in plan.heads),
    ]
    return next((problem for problem in found if problem), "")


def _head_problem(head: Head, table: Table) -> str:
    recipe = table.recipes.get(head.task)
    if recipe is None:
        return f"gives the head {head.name} the task {head.task!r}"
    said = f"the {head.task} head {head.name}"
    labels = head.labels
    if labels.format not in recipe.label_formats:
        return f"gives {said} labels of the format {labels.format!r}"
    n = len(set(labels.classes))
    fits = {"binary": n == 2, "multiclass": n >= 2, "regression": n == 0}[head.task]
    if not fits or n < len(labels.classes):
        return f"gives {said} the classes {list(labels.classes)}"
    units = {"binary": (1, 2), "regression": (1,)}.get(head.task, (n,))
    if head.output_units not in units:
        return f"gives {said} {shown(head.output_units)} output units"
    if head.output_activation not in table.activations:
        return f"gives {said} the output activation {head.output_activation!r}"
    unknown = [m for m in head.metrics if m not in recipe.metric_choices]
    if unknown:
        return (
            f"gives {said} the metrics {unknown} (its task's: {', '.join(recipe.metric_choices)})"
        )
    if not _threshold_fits(head.threshold):
        return f"gives {said} the threshold {head.threshold!r}"
    if head.target_transform not in ("none", *TARGET_TRANSFORMS):
        return f"gives {said} the target transform {head.target_transform!r}"
    return _layers_problem(head.layers, table, f"{said}'s layers") or _loss_problem(
        head.loss, table, said
    )


def _threshold_fits(threshold: Any) -> bool:
    if threshold is None or threshold in THRESHOLD_CHOICES:
        return True
    return not isinstance(threshold, str) and THRESHOLD_RANGE.check(threshold) is None


def _loss_problem(loss: LossPlan, table: Table, said: str) -> str:
    if not loss.terms or not loss.stages or loss.form not in LOSS_FORMS:
        return f"gives {said} a loss of {len(loss.terms)} terms in {len(loss.stages)} stages"
    if any(len(stage.weights) != len(loss.terms) for stage in loss.stages):
        return f"gives {said} loss stages whose weights are not one per loss"
    known = table.all_losses()
    return next((p for t in loss.terms if (p := _built_problem(t, known, "loss"))), "")


def _built_problem(
    built: Built,
    known: Mapping[str, Named],
    what: str,
    common: Mapping[str, Param] = {},
    *,
    every: bool = False,
) -> str:
    """`every`: each of the table's parameters must be there (taskfit builds it from them
    alone, with no Keras default to fall back on)."""
    named = known.get(built.name)
    if named is None:
        return f"names the {what} {built.name!r}, which this taskfit does not know"
    if built.keras_class != named.keras_class:
        return f"gives the {what} {built.name} the class {built.keras_class!r}, not " + (
            named.keras_class
        )
    params = {**common, **named.params}
    for key, value in built.params.items():
        param = params.get(key)
        problem = f"takes no {key}" if param is None else param.check(value)
        if problem:
            return f"gives the {what} {built.name} {key}: {shown(value)}, which {problem}"
    missing = [key for key in named.params if key not in built.params] if every else []
    return f"gives the {what} {built.name} no {missing[0]}" if missing else ""


def _layers_problem(layers: tuple[LayerSpec, ...], table: Table, said: str) -> str:
    for layer in layers:
        bad = _UNITS.check(layer.units) or _DROPOUT.check(layer.dropout)
        if bad or layer.activation not in table.activations:
            return f"gives {said} the layer {layer!r}"
    return ""
