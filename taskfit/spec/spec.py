"""The task spec: YAML -> a frozen, validated `Spec`. Every problem at once, with path and line.

`load_spec` checks everything that can be checked without the data: structure, types, ranges, and
every loss, optimizer, schedule, metric and activation name against the recommendation table.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskfit.config.params import Param, show, unknown
from taskfit.config.schema import Builder, Choice, key
from taskfit.config.yamlfile import PathKey, YamlDoc, parse_yaml, read_yaml
from taskfit.errors import SpecError
from taskfit.recipe.table import TASKS, Named, load_table
from taskfit.spec.lossform import LossSpec


@dataclass(frozen=True)
class LayerSpec:
    units: int = key(doc="width of the Dense layer", param=Param("int", ge=1))
    activation: str = key("relu", doc="Keras activation name", names="activations")
    dropout: float = key(0.0, doc="Dropout rate after the layer", param=Param("float", ge=0, lt=1))


@dataclass(frozen=True)
class OutputSpec:
    units: int | str = key("auto", doc="auto: from the table (1, or one per class)")
    activation: str = key(
        "auto", doc="auto: from the table (sigmoid, softmax, linear)", names="activations"
    )


@dataclass(frozen=True)
class ModelSpec:
    layers: tuple[LayerSpec, ...] | None = key(
        None, doc="hidden layers in order; default: the table's"
    )
    output: OutputSpec = key(OutputSpec(), doc="the output layer; leave it to the table")
    head_layers: tuple[LayerSpec, ...] = key(
        (), doc="heads only: hidden layers of each head, after the shared layers"
    )
    members: int | None = key(
        None,
        doc="copies of the body trained side by side, each with its own loss; the model "
        "outputs their mean (default: the table's count on a small table, else 1)",
        param=Param("int", ge=1),
    )
    numeric_embedding: str | None = key(
        None,
        doc="periodic: each numeric column as sin/cos of learned frequencies, then a Dense "
        "layer; none: the standardised number as is (default: the table's on a small table)",
        param=Param("str", choices=("periodic", "none")),
    )


@dataclass(frozen=True)
class DataSpec:
    source: str = key(doc="a bundled dataset's name, or a CSV path relative to the spec")
    label: str | tuple[str, ...] | None = key(
        None, doc="the label column; for one-hot labels a list of columns (heads: on each head)"
    )
    features: tuple[str, ...] | None = key(None, doc="input columns; default: every other column")
    ignore: tuple[str, ...] = key((), doc="columns to leave out")
    numeric: tuple[str, ...] = key((), doc="columns to treat as numbers (default: inferred)")
    categorical: tuple[str, ...] = key(
        (), doc="columns to treat as categories, e.g. integer codes (default: inferred)"
    )
    positive: str | int | bool | None = key(
        None,
        doc="binary: the label value of the positive class (default: 1, true, yes, or the "
        "second value in sorted order)",
    )
    classes: tuple[str | int, ...] | None = key(
        None, doc="class names in output order (default: the label values, sorted)"
    )
    test_fraction: float = key(0.2, doc="held-out test split", param=Param("float", gt=0, lt=1))
    validation_fraction: float = key(
        0.2, doc="validation split, taken from the training part", param=Param("float", ge=0, lt=1)
    )
    streaming: bool | None = key(
        None,
        doc="read the CSV in chunks, never whole in memory (default: on above 256 MiB); types "
        "and labels come from its first 20000 rows",
    )


@dataclass(frozen=True)
class ReduceLrSpec:
    factor: float = key(
        0.3, doc="multiply the rate by this at each cut", param=Param("float", gt=0, lt=1)
    )
    patience: int = key(4, doc="epochs without improvement before a cut", param=Param("int", ge=0))
    min_lr: float = key(1e-5, doc="the rate is never cut below this", param=Param("float", ge=0))


@dataclass(frozen=True)
class EarlyStoppingSpec:
    patience: int = key(
        10, doc="epochs without improvement before stopping", param=Param("int", ge=0)
    )
    monitor: str = key("val_loss", doc="the logged quantity to watch")
    min_delta: float = key(0.0, doc="smallest change that counts", param=Param("float", ge=0))
    restore_best_weights: bool = key(True, doc="keep the best epoch's weights")
    reduce_lr: ReduceLrSpec | None = key(
        ReduceLrSpec(),
        doc="the table's advice on a plateau: cut the learning rate before stopping (Keras's "
        "ReduceLROnPlateau on the same quantity); null turns it off; off when a schedule sets "
        "the rate",
    )


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = key(100, doc="most passes over the training split", param=Param("int", ge=1))
    batch_size: int = key(32, doc="rows per gradient step", param=Param("int", ge=1))
    seed: int = key(
        0, doc="seeds the split, initial weights and shuffling", param=Param("int", ge=0)
    )
    early_stopping: EarlyStoppingSpec | None = key(
        EarlyStoppingSpec(), doc="stop when val_loss stops improving; null turns it off"
    )
    refit: bool | None = key(
        None,
        doc="after early stopping, train afresh on train + validation for the kept number of "
        "epochs, replaying each epoch's learning rate (default: the table's on a small table)",
    )
    tensorboard: bool = key(False, doc="write TensorBoard logs to <run folder>/tensorboard")
    class_weight: str | dict[Any, float] | None = key(
        None,
        doc="balanced (weights inverse to class frequency in training) or {class name: weight}",
        param=Param("str", choices=("balanced",)),
    )


SINGLE_HEAD = "output"  # a spec with one task has one head, named as its Keras output layer
AUTO_LOSS = LossSpec.named("auto")
LOSS_DOC = (
    "auto: the table's loss for the label format; or a name, {name: ..., params}, "
    "{blend: [{loss, weight}, ...]} or {schedule: [{loss or blend, until_epoch}, ...]}"
)


@dataclass(frozen=True)
class HeadSpec:
    """One output of a model with several: its own label, task, loss and weight."""

    task: str = key(doc="the kind of label", param=Param("str", choices=TASKS))
    label: str | tuple[str, ...] = key(doc="the label column; for one-hot labels a list")
    loss: LossSpec = key(AUTO_LOSS, doc=LOSS_DOC, names="losses")
    loss_weight: float = key(
        1.0, doc="this head's share of the total loss (fixed weighting)", param=Param("float", ge=0)
    )
    metrics: str | tuple[str, ...] = key("auto", doc="auto: the table's metrics; or Keras names")
    positive: str | int | bool | None = key(None, doc="binary: the positive class's label value")
    classes: tuple[str | int, ...] | None = key(None, doc="class names in output order")
    layers: tuple[LayerSpec, ...] | None = key(
        None, doc="this head's hidden layers; default: model.head_layers"
    )


@dataclass(frozen=True, kw_only=True)
class Spec:
    task: str | None = key(
        None, doc="the kind of label (or give heads)", param=Param("str", choices=TASKS)
    )
    data: DataSpec = key(doc="where the rows come from")
    heads: dict[str, HeadSpec] | None = key(
        None, doc="several outputs instead of one task: head name -> its task, label, loss"
    )
    loss_weighting: Choice = key(
        Choice("fixed"),
        doc="heads: fixed (loss_weight), uncertainty (learned), or dwa (from loss ratios)",
        names="weightings",
    )
    name: str | None = key(None, doc="names the run folder; default: the spec file's name")
    model: ModelSpec = key(ModelSpec(), doc="the network between input and output")
    loss: LossSpec = key(AUTO_LOSS, doc=LOSS_DOC, names="losses")
    optimizer: Choice = key(
        Choice("adam"), doc="a name takes Keras defaults; a mapping sets params", names="optimizers"
    )
    schedule: Choice | None = key(
        None, doc="a learning-rate schedule for the optimizer", names="schedules"
    )
    metrics: str | tuple[str, ...] = key("auto", doc="auto: the table's metrics; or Keras names")
    training: TrainingSpec = key(TrainingSpec(), doc="how long and how to fit")
    strict: bool = key(True, doc="false: contradictions with the table warn instead of failing")


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec and where it came from (relative data paths resolve against `base_dir`)."""

    spec: Spec
    base_dir: Path
    source: str
    raw: dict[str, Any]  # the user's keys, after --set, for spec.resolved.yaml


# Dotted spec keys -> values: {"training.epochs": 5}. The CLI reads its --set items into this
# (taskfit.cli.overrides); the library never parses strings.
Overrides = Mapping[str, Any]


def then(first: Overrides, later: Overrides) -> dict[str, Any]:
    """`later` applied after `first`, as --set items are, one by one: a key set again moves to the
    end, so it applies after the keys given in between."""
    combined = dict(first)
    for dotted, value in later.items():
        combined.pop(dotted, None)
        combined[dotted] = value
    return combined


# A spec file, or a spec's keys as data ({"task": "binary", "data": {...}}).
SpecSource = str | Path | Mapping[str, Any]


def load_spec(source: SpecSource, overrides: Overrides | None = None) -> LoadedSpec:
    """A spec file (its relative paths relative to its folder), or a spec given as data (its
    relative paths relative to the working directory; problems name no line)."""
    if isinstance(source, Mapping):
        return _load(YamlDoc(dict(source), "<spec>"), Path.cwd(), overrides or {})  # _load copies
    path = Path(source)
    return _load(read_yaml(path), path.resolve().parent, overrides or {})


def spec_stem(source: SpecSource) -> str:
    """What names a run whose spec has no `name`: the file's stem, or "spec" for data."""
    return "spec" if isinstance(source, Mapping) else Path(source).stem


def parse_spec(text: str, base_dir: Path, overrides: Overrides | None = None) -> LoadedSpec:
    return _load(parse_yaml(text, "<spec>"), base_dir, overrides or {})


def _load(doc: YamlDoc, base_dir: Path, overrides: Overrides) -> LoadedSpec:
    if doc.data is None:
        raise SpecError(f"{doc.source}: is empty; a spec needs at least `task` and `data`")
    data = copy.deepcopy(doc.data)
    overridden = frozenset(apply_override(data, k, value) for k, value in overrides.items())
    builder = Builder(doc, overridden, lookup=check_name)
    _check_task_or_heads(data, builder)
    spec = builder.build(Spec, data)
    if spec is not None:
        check_together(spec, builder)
    builder.problems.raise_if_any()
    assert spec is not None
    return LoadedSpec(spec, base_dir, doc.source, data)


def apply_override(data: Any, dotted: str, value: Any) -> PathKey:
    """("training.epochs", 3) -> data["training"]["epochs"] = 3."""
    parts = dotted.strip().split(".")
    shown = value if isinstance(value, str) else json.dumps(value, default=str)
    item = f"{dotted}={shown}"  # as a --set item says it
    if not all(parts):
        raise SpecError(f"--set {item}: expected key.path=value, e.g. --set training.epochs=3")
    if not isinstance(data, dict):
        raise SpecError("--set: the spec must be a mapping of keys")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise SpecError(f"--set {item}: `{part}` is {show(child)}, not a mapping of keys")
        node = child
    node[parts[-1]] = copy.deepcopy(value)
    return tuple(parts)


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
    catalog: dict[str, Named] = {
        "losses": table.all_losses(),
        "optimizers": table.optimizers,
        "schedules": table.schedules,
        "weightings": table.weightings,
    }[kind]
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


def _check_task_or_heads(raw: Any, b: Builder) -> None:
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
    _check_label_keys(spec.task, spec.data.positive, spec.data.classes, ("data",), b)
    for path, is_set in (
        (("loss_weighting",), spec.loss_weighting.name != "fixed"),
        (("model", "head_layers"), bool(spec.model.head_layers)),
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
    learned = spec.loss_weighting.name != "fixed"
    labels: dict[str, str] = {}
    for name, head in heads.items():
        if not HEAD_NAME.match(str(name)):
            b.add(
                ("heads", name),
                "a head name starts with a letter and holds letters, digits "
                "and _ only (it names the Keras output and its metrics)",
            )
        _check_metrics(head.task, head.metrics, ("heads", name, "metrics"), b)
        _check_label_keys(head.task, head.positive, head.classes, ("heads", name), b)
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


def _check_label_keys(
    task: str, positive: Any, classes: tuple[Any, ...] | None, path: PathKey, b: Builder
) -> None:
    """`positive` is for a binary label and `classes` for classes: a task without them would
    ignore the key, so it is a mistake."""
    if positive is not None and task != "binary":
        b.add(
            (*path, "positive"),
            f"names the positive class of a binary label; a {task} task has none. Remove it.",
        )
    if classes is not None and task == "regression":
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


def spec_schema() -> dict[str, Any]:
    """The spec's JSON Schema (`taskfit schema`), generated from the dataclasses above and the
    table's names, so editors complete and check the keys the validator accepts."""
    from taskfit.config.schema import json_schema

    table = load_table()
    catalogs: dict[str, list[str]] = {
        "losses": ["auto", *table.all_losses()],
        "optimizers": list(table.optimizers),
        "schedules": list(table.schedules),
        "weightings": list(table.weightings),
        "activations": ["auto", *table.activations],  # auto: the output layer's, from the table
    }
    schema = json_schema(Spec, lambda kind: catalogs[kind])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "taskfit task spec",
        **schema,
    }
