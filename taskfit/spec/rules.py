"""The checks on a spec that its keys' types and ranges cannot say: every name against the
recommendation table, and the keys that go together (one task or heads, a schedule's bounds)."""

from __future__ import annotations

import itertools
import re
from typing import Any

from taskfit.config.params import Param, show, unknown
from taskfit.config.schema import Builder, Choice
from taskfit.config.yamlfile import PathKey
from taskfit.recipe.table import Named, load_table
from taskfit.spec.keys import DataSpec, HeadSpec, OutputSpec, Spec


def check_name(kind: str, value: Any, path: PathKey, b: Builder) -> None:
    """A name the spec uses must be in the table (`kind` is the table list), with valid params."""
    table = load_table()
    if kind == "activations":
        if value != "auto" and value not in table.activations:
            options = (
                table.activations
                if path[-2:] != ("output", "activation")
                else ("auto", *table.activations)
            )
            b.add(path, unknown("activation", value, options))
        return
    if kind == "losses":
        for term in value.terms():
            _check_choice(kind, term.choice, term.path or path, b)
        return
    _check_choice(kind, value, path, b)


def _check_choice(kind: str, value: Choice, path: PathKey, b: Builder) -> None:
    table = load_table()
    catalog = table.catalog(kind)
    if kind == "losses" and value.name == "auto":
        if value.params:
            b.add(path, "auto takes no parameters; name the loss to set them")
        return
    if value.name not in catalog:
        singular = {
            "losses": "loss",
            "optimizers": "optimizer",
            "schedules": "schedule",
            "weightings": "loss_weighting",
            "sharings": "model.sharing",
            "embeddings": "model.numeric_embedding",
            "clippings": "model.numeric_clipping",
        }[kind]
        b.add(path, unknown(singular, value.name, catalog))
        return
    extra = table.optimizer_common if kind == "optimizers" else None
    _check_params(catalog[value.name], value, path, b, extra)
    if kind == "schedules":
        _check_piecewise(value, b)


HEAD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # Keras output names, metric prefixes


def check_together(spec: Spec, b: Builder) -> None:
    """Checks that span several keys, once each key is valid on its own."""
    if spec.schedule and "learning_rate" in spec.optimizer.params:
        b.add(
            ("optimizer", "learning_rate"),
            "is set together with `schedule`; the schedule sets the learning rate. "
            "Remove one of them.",
        )
    units = spec.model.output.units
    if units != "auto" and (isinstance(units, bool) or not isinstance(units, int) or units < 1):
        b.add(
            ("model", "output", "units"),
            f"must be auto or an integer >= 1. Got {show(units)} instead.",
        )
    if spec.heads is None:
        _check_one_task(spec, b)
    else:
        _check_heads(spec, spec.heads, b)


def check_task_or_heads(raw: Any, b: Builder) -> None:
    """A spec gives `task` and `data.label`, or `heads`. Checked on the raw keys, so that a
    missing one is reported together with every other problem."""
    if not isinstance(raw, dict) or raw.get("heads") is not None:
        return
    if raw.get("task") is None:
        b.add(("task",), "is required: binary, multiclass or regression (or give `heads`)")
    data = raw.get("data")
    if isinstance(data, dict) and data.get("label") is None:
        b.add(("data", "label"), "is required (the label column; for one-hot labels a list)")


def _check_one_task(spec: Spec, b: Builder) -> None:
    if spec.task is None:
        return
    _check_metrics(spec.task, spec.metrics, ("metrics",), b)
    _check_label_keys(spec.task, spec.data, ("data",), b)
    for path, is_set in (
        (("loss_weighting",), spec.loss_weighting.name != "fixed"),
        (("model", "head_layers"), bool(spec.model.head_layers)),
        (("model", "sharing"), spec.model.sharing.name != "hard"),
    ):
        if is_set:
            b.add(path, "weighs or shapes several heads; this spec has one task. Remove it.")


def _check_heads(spec: Spec, heads: dict[str, HeadSpec], b: Builder) -> None:
    if spec.task is not None:
        b.add(("task",), "is set together with `heads`; each head has its own task. Remove one.")
    if len(heads) < 2:
        b.add(
            ("heads",),
            f"names {len(heads)} head(s); heads are for two or more outputs. For one, use "
            "`task:` and `data.label:` instead.",
        )
    per_head = {
        ("data", "label"): spec.data.label is not None,
        ("data", "positive"): spec.data.positive is not None,
        ("data", "classes"): spec.data.classes is not None,
        ("data", "threshold"): spec.data.threshold is not None,
        ("loss",): not spec.loss.is_auto,
        ("metrics",): spec.metrics != "auto",
    }
    for path, is_set in per_head.items():
        if is_set:
            b.add(path, f"belongs on each head with `heads`: set heads.<name>.{path[-1]}")
    if spec.model.output != OutputSpec():  # HeadSpec has no output: the table sets each one
        b.add(
            ("model", "output"),
            "sets one task's output layer; with `heads` the table gives each head its own. "
            "Remove it.",
        )
    if spec.training.class_weight is not None:
        b.add(
            ("training", "class_weight"),
            "works with one task only (Keras weighs classes of a single output); "
            "with heads use a focal loss on the skewed head",
        )
    weighting = load_table().weightings.get(spec.loss_weighting.name)
    learned = weighting is not None and not weighting.fixed_weights
    labels: dict[str, str] = {}
    for name, head in heads.items():
        if not HEAD_NAME.match(str(name)):
            b.add(
                ("heads", name),
                "a head name starts with a letter and holds letters, digits "
                "and _ only (it names the Keras output and its metrics)",
            )
        elif str(name) == "val" or str(name).startswith("val_"):  # Keras's validation prefix
            b.add(
                ("heads", name),
                f"Keras logs each head's validation metrics as val_<head>_..., so a head "
                f"named {name} mixes its logs with another's; name it otherwise",
            )
        _check_metrics(head.task, head.metrics, ("heads", name, "metrics"), b)
        _check_label_keys(head.task, head, ("heads", name), b)
        if learned and head.loss_weight != 1.0:
            b.add(
                ("heads", name, "loss_weight"),
                f"is fixed weighting; loss_weighting: {spec.loss_weighting.name} learns the "
                "weights. Remove loss_weight, or use loss_weighting: fixed.",
            )
        columns = (head.label,) if isinstance(head.label, str) else head.label
        for column in columns:
            if column in labels:
                b.add(
                    ("heads", name, "label"),
                    f"{column!r} is already the label of head {labels[column]}; "
                    "each head needs its own label column",
                )
            labels[column] = str(name)


def _check_label_keys(task: str, keys: DataSpec | HeadSpec, path: PathKey, b: Builder) -> None:
    """`positive` and `threshold` are for a binary label and `classes` for classes: a task
    without them would ignore the key, so it is a mistake."""
    if keys.positive is not None and task != "binary":
        b.add(
            (*path, "positive"),
            f"names the positive class of a binary label; a {task} task has none. Remove it.",
        )
    if keys.threshold is not None and task != "binary":
        b.add(
            (*path, "threshold"),
            "cuts a binary label's probability; "
            + (
                "a multiclass task picks its most probable class"
                if task == "multiclass"
                else "a regression label has no classes"
            )
            + ". Remove it.",
        )
    if keys.classes is not None and task == "regression":
        b.add((*path, "classes"), "orders classes; a regression label has none. Remove it.")


def _check_metrics(task: str, metrics: str | tuple[str, ...], path: PathKey, b: Builder) -> None:
    recipe = load_table().recipe(task)
    if isinstance(metrics, tuple):
        for i, metric in enumerate(metrics):
            if metric not in recipe.metric_choices:
                b.add((*path, i), unknown(f"{task} metric", metric, recipe.metric_choices))
    elif metrics != "auto":
        b.add(path, f"must be auto or a list of Keras metric names. Got {show(metrics)} instead.")


def _check_params(
    item: Named, choice: Choice, path: PathKey, b: Builder, extra: dict[str, Param] | None = None
) -> None:
    allowed = {**item.params, **(extra or {})}
    for name, value in choice.params.items():
        if not allowed:  # "Expected one of:" with nothing after it would not say what to do
            b.add((*path, name), f"{item.name} takes no parameters; remove {show(name)}")
        elif name not in allowed:
            b.add((*path, name), unknown(f"{item.name} parameter", name, allowed))
        elif problem := allowed[name].check(value):
            b.add((*path, name), problem)
    for name, param in item.params.items():
        if param.required and name not in choice.params:
            b.add(
                path,
                f"{item.name} needs `{name}` ({param.doc}), e.g. "
                f"{ {'name': item.name, **(item.example or {})} }",
            )


def _check_piecewise(schedule: Choice, b: Builder) -> None:
    bounds, values = schedule.params.get("boundaries"), schedule.params.get("values")
    if not (isinstance(bounds, list) and isinstance(values, list)):
        return
    if len(values) != len(bounds) + 1:
        b.add(
            ("schedule", "values"),
            f"needs one more value than boundaries ({len(bounds) + 1}). Got {len(values)} instead.",
        )
    if any(a >= c for a, c in itertools.pairwise(bounds)):
        b.add(("schedule", "boundaries"), f"must increase. Got {bounds} instead.")
